"""The RAG ingestion resources (`infra/components/documents.py`), synthesized in a stack of their
own, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(load_infra: Callable[[str], ModuleType]) -> Any:
    documents = load_infra("infra.components.documents")
    import aws_cdk as cdk
    from aws_cdk import assertions

    app = cdk.App()
    stack = cdk.Stack(app, "DocumentsTest", env=cdk.Environment(region="eu-west-1"))
    docs = documents.Documents(
        stack,
        "Documents",
        code_dir=REPO / "functions" / "ingest",
        layers=[],
        environment={"LOCKGATE_LOG_LEVEL": "INFO"},
    )
    from aws_cdk import aws_lambda as lambda_

    reader = lambda_.Function(
        stack,
        "Reader",
        runtime=lambda_.Runtime.PYTHON_3_12,
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
        handler="index.handler",
    )
    docs.allow_retrieval(reader)
    writer = lambda_.Function(
        stack,
        "Writer",
        runtime=lambda_.Runtime.PYTHON_3_12,
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
        handler="index.handler",
    )
    docs.allow_writes(writer)
    return assertions.Template.from_stack(stack)


def only(template: Any, kind: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = template.find_resources(kind).items()
    return logical_id, resource["Properties"]


def statements(template: Any, role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in template.find_resources("AWS::IAM::Policy").values():
        roles = json.dumps(resource["Properties"]["Roles"])
        if role_prefix in roles:
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_bucket_is_private_versioned_and_tls_only(template: Any) -> None:
    _, bucket = only(template, "AWS::S3::Bucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    (policy,) = template.find_resources("AWS::S3::BucketPolicy").values()
    denies = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in denies)


def test_created_and_removed_events_go_to_the_queue(template: Any) -> None:
    (notifications,) = template.find_resources("Custom::S3BucketNotifications").values()
    queues = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(q["Events"][0] for q in queues) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def test_queue_redrives_to_a_dlq_and_outlasts_the_function(template: Any) -> None:
    queues = template.find_resources("AWS::SQS::Queue")
    main = next(q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"])
    dlq_id = next(i for i, q in queues.items() if "RedrivePolicy" not in q["Properties"])
    assert main["RedrivePolicy"]["maxReceiveCount"] == 5
    assert main["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    _, function = next(
        (i, r["Properties"])
        for i, r in template.find_resources("AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "handler.handler"
    )
    assert main["VisibilityTimeout"] == 6 * function["Timeout"]


def test_function_reports_partial_batch_failures(template: Any) -> None:
    _, mapping = only(template, "AWS::Lambda::EventSourceMapping")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 5


def test_function_environment_names_the_stores(template: Any) -> None:
    function = next(
        r["Properties"]
        for r in template.find_resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "handler.handler"
    )
    env = function["Environment"]["Variables"]
    assert {
        "LOCKGATE_DOCUMENTS_TABLE", "LOCKGATE_IDEMPOTENCY_TABLE",
        "LOCKGATE_RAG_TEXT_INDEX", "LOCKGATE_RAG_VECTOR_INDEX",
    } <= set(env)  # fmt: skip
    assert env["LOCKGATE_OPENSEARCH_AUTH"] == "sigv4"
    assert function["Runtime"] == "python3.12"


def test_tables_key_design_and_idempotency_ttl(template: Any) -> None:
    tables = [t["Properties"] for t in template.find_resources("AWS::DynamoDB::Table").values()]
    keys = sorted(tuple(k["AttributeName"] for k in t["KeySchema"]) for t in tables)
    assert keys == [("id",), ("pk", "sk")]
    idempotency = next(t for t in tables if t["KeySchema"][0]["AttributeName"] == "id")
    assert idempotency["TimeToLiveSpecification"] == {
        "AttributeName": "expiration", "Enabled": True
    }  # fmt: skip


def test_tables_have_point_in_time_recovery(template: Any) -> None:
    for table in template.find_resources("AWS::DynamoDB::Table").values():
        spec = table["Properties"]["PointInTimeRecoverySpecification"]
        assert spec == {"PointInTimeRecoveryEnabled": True}


def test_ingest_reads_objects_and_writes_tables_and_the_reader_only_reads(template: Any) -> None:
    ingest = json.dumps(statements(template, "DocumentsRole"))
    assert "dynamodb:PutItem" in ingest and '"s3:GetObject"' in ingest
    assert '"s3:ListBucket"' in ingest  # a removed object reads as 404, not 403
    assert "s3:PutObject" not in ingest and "s3:DeleteObject" not in ingest

    def actions(prefix: str) -> set[str]:
        return {
            a
            for s in statements(template, prefix)
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }

    assert "dynamodb:Query" in actions("Reader") and "dynamodb:PutItem" not in actions("Reader")
    assert {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"} <= actions("Writer")
