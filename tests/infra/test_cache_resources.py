"""The exact cache's table and bucket as CloudFormation will be told, and what a function
attached to them may do."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture(scope="module")
def template(load_infra: Any) -> Any:
    cdk = load_infra("aws_cdk")
    lambda_ = load_infra("aws_cdk.aws_lambda")
    assertions = load_infra("aws_cdk.assertions")
    cache = load_infra("infra.components.cache")
    app = cdk.App()
    stack = cdk.Stack(app, "CacheTest")
    store = cache.ExactCacheStore(stack, "ExactCache")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
    )
    store.attach(function)
    return assertions.Template.from_stack(stack)


def only(template: Any, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = template.find_resources(kind)
    assert len(found) == 1, f"expected one {kind}: {list(found)}"
    return next(iter(found.values()))["Properties"]


def test_the_table_is_on_demand_with_ttl_pitr_and_the_purge_index(template: Any) -> None:
    table = only(template, "AWS::DynamoDB::Table")

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_scope"
    assert index["KeySchema"] == [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "alias", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["s3_key"]}


def test_the_table_and_bucket_outlive_a_stack_deletion_by_default(template: Any) -> None:
    for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        (resource,) = template.find_resources(kind).values()
        assert resource["DeletionPolicy"] == "Retain"


def test_big_answers_bucket_is_private_and_expires_its_objects(template: Any) -> None:
    bucket = only(template, "AWS::S3::Bucket")

    block = bucket["PublicAccessBlockConfiguration"]
    assert all(
        block[flag]
        for flag in (
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        )
    )
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "exact-cache/"
    assert rule["ExpirationInDays"] == 7
    assert rule["Status"] == "Enabled"
    policy = json.dumps(only(template, "AWS::S3::BucketPolicy"))
    assert "aws:SecureTransport" in policy


def test_an_attached_function_gets_the_names_and_the_rights_it_uses(template: Any) -> None:
    function = only(template, "AWS::Lambda::Function")
    env = function["Environment"]["Variables"]
    assert set(env) >= {"LOCKGATE_EXACT_CACHE_TABLE", "LOCKGATE_EXACT_CACHE_BUCKET"}

    statements = only(template, "AWS::IAM::Policy")["PolicyDocument"]["Statement"]
    actions: set[str] = set()
    resources = []
    for statement in statements:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
        resources.append(json.dumps(statement["Resource"]))
    assert {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    } <= actions
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= actions
    assert any("/index/*" in r for r in resources), "purge queries the by_scope index"
    object_statements = [
        json.dumps(s["Resource"])
        for s in statements
        if any(
            "Object" in a for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        )
    ]
    assert object_statements
    assert all("exact-cache/*" in r for r in object_statements), "objects under the prefix only"
