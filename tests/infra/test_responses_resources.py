"""The `/v1/responses` conversation table as CloudFormation will be told, and what a function
attached to it may do.

The table's key schema and TTL are read from the synthesized template and created as such in
moto (emulated DynamoDB); the real `DynamoResponseStore` then stores, reads and deletes a
conversation through boto3, and every API call it made must be an action the template grants
the function on that table. Whether AWS would enforce the grant exactly so is by reading.
"""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
import pytest
from lockgate.stores.aws.responses import DynamoResponseStore
from moto import mock_aws


@pytest.fixture(scope="module")
def template(load_infra: Any) -> Any:
    cdk = load_infra("aws_cdk")
    lambda_ = load_infra("aws_cdk.aws_lambda")
    assertions = load_infra("aws_cdk.assertions")
    responses = load_infra("infra.components.responses")
    app = cdk.App()
    stack = cdk.Stack(app, "ResponsesTest")
    store = responses.ResponseStore(stack, "Responses")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
    )
    store.attach(function)
    return assertions.Template.from_stack(stack)


def only(template: Any, kind: str) -> tuple[str, dict[str, Any]]:
    found: dict[str, Any] = template.find_resources(kind)
    assert len(found) == 1, f"expected one {kind}: {list(found)}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource


def test_the_table_is_on_demand_encrypted_with_ttl_pitr_and_kept(template: Any) -> None:
    _, table = only(template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert "GlobalSecondaryIndexes" not in props
    assert table["DeletionPolicy"] == "Retain"


def test_the_store_runs_on_the_table_with_exactly_the_granted_calls(template: Any) -> None:
    table_id, table = only(template, "AWS::DynamoDB::Table")
    _, function = only(template, "AWS::Lambda::Function")
    assert function["Properties"]["Environment"]["Variables"] == {
        "LOCKGATE_RESPONSE_TABLE": {"Ref": table_id}
    }
    _, policy = only(template, "AWS::IAM::Policy")
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}, "this table, no index"
    granted = set(statement["Action"])

    props = table["Properties"]
    called: set[str] = set()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.meta.events.register(
            "before-call.dynamodb.*",
            lambda model, **_: called.add(f"dynamodb:{model.name}"),
        )
        client.create_table(
            TableName="responses",
            BillingMode=props["BillingMode"],
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
        )
        client.update_time_to_live(
            TableName="responses",
            TimeToLiveSpecification=props["TimeToLiveSpecification"],
        )
        called.clear()  # the deployment's calls, not the store's
        store = DynamoResponseStore("responses", dynamodb=client)
        record = {"messages": [{"role": "user", "content": "hi"}], "response": {"id": "r1"}}

        async def conversation() -> None:
            await store.put("tenant-a", "r1", record, ttl_s=60)
            assert await store.get("tenant-a", "r1") == record
            assert await store.get("tenant-b", "r1") is None
            assert await store.delete("tenant-a", "r1")
            assert await store.get("tenant-a", "r1") is None

        asyncio.run(conversation())
        store_calls = set(called)
        assert client.scan(TableName="responses")["Items"] == []
    assert store_calls == granted == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}
