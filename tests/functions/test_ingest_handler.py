"""functions/ingest/handler.py as Lambda runs it: S3 notifications delivered through SQS.

Emulated: S3, SQS and DynamoDB by moto (the S3 → SQS notifications are moto's own, so keys
arrive URL-encoded as S3 sends them), OpenSearch by the stub on 127.0.0.1 (real opensearch-py
client). Real: the handler, Powertools batch processing and idempotency, the ingestion service,
the loaders and the local MiniLM embedder.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from lockgate.stores.aws.documents import DynamoDocumentStore
from moto import mock_aws

from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub

REGION = "eu-west-1"
BUCKET = "lockgate-docs"
TEXT_INDEX = "rag-text"
VECTOR_INDEX = "rag-vectors"


class FakeContext:
    function_name = "ingest"
    aws_request_id = "req-1"
    memory_limit_in_mb = 2048
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:ingest"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class Aws:
    def __init__(self, stub: OpenSearchStub) -> None:
        self.stub = stub
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        self.queue = self.sqs.create_queue(QueueName="ingest")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": self.queue_arn,
                        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    }
                ]
            },
        )
        for table in ("documents", "idempotency"):
            key = "pk sk" if table == "documents" else "id"
            self.ddb.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": n, "KeyType": t}
                    for n, t in zip(key.split(), ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[
                    {"AttributeName": n, "AttributeType": "S"} for n in key.split()
                ],
                BillingMode="PAY_PER_REQUEST",
            )

    def sqs_event(self) -> dict[str, Any]:
        """The Lambda SQS event for what is waiting in the queue (as the event source mapping
        would deliver it), the queue drained."""
        records = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                records.append(
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                        "attributes": message.get("Attributes", {}),
                        "messageAttributes": {},
                        "md5OfBody": message["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.queue_arn,
                        "awsRegion": REGION,
                    }
                )
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return {"Records": records}

    def chunks(self, namespace: str) -> list[dict[str, Any]]:
        docs = self.stub.indices[VECTOR_INDEX].docs.values()
        return [d for d in docs if d["namespace"] == namespace]

    def text_chunks(self, namespace: str) -> list[dict[str, Any]]:
        docs = self.stub.indices[TEXT_INDEX].docs.values()
        return [d for d in docs if d["namespace"] == namespace]


@pytest.fixture(scope="module")
def env(
    entry_loader: Callable[[str, str], ModuleType],
) -> Iterator[tuple[ModuleType, Aws]]:
    with opensearch_stub() as (url, stub), mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_REGION", REGION)
        patch.setenv("LOCKGATE_DOCUMENTS_TABLE", "documents")
        patch.setenv("LOCKGATE_IDEMPOTENCY_TABLE", "idempotency")
        patch.setenv("LOCKGATE_OPENSEARCH_URL", url)
        patch.setenv("LOCKGATE_OPENSEARCH_AUTH", "none")
        patch.setenv("LOCKGATE_RAG_TEXT_INDEX", TEXT_INDEX)
        patch.setenv("LOCKGATE_RAG_VECTOR_INDEX", VECTOR_INDEX)
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LockgateTest")
        aws = Aws(stub)
        module = entry_loader("functions/ingest/handler.py", "lockgate_ingest_handler")
        yield module, aws
        rt = module._runtime
        if rt is not None and rt.components is not None:
            rt.loop.run_until_complete(rt.components.aclose())


def run(module: ModuleType, aws: Aws) -> tuple[dict[str, Any], dict[str, Any]]:
    event = aws.sqs_event()
    return event, module.handler(event, FakeContext())


REFUNDS = (
    b"# Refunds\n\n## How long do refunds take?\n\n"
    b"Refunds reach your card within 5 to 7 business days.\n"
)


def test_created_object_is_indexed_under_its_tenant_and_collection(
    env: tuple[ModuleType, Aws],
) -> None:
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="acme/support/help centre/refunds.md", Body=REFUNDS)
    event, response = run(module, aws)
    assert len(event["Records"]) == 2  # S3's test event, then the object's
    assert response == {"batchItemFailures": []}
    (vector,) = aws.chunks("rag/acme/support")
    (text,) = aws.text_chunks("rag/acme/support")
    assert vector["payload"]["uri"] == f"s3://{BUCKET}/acme/support/help centre/refunds.md"
    assert vector["payload"]["section"] == "How long do refunds take?"
    assert text["record_id"] == vector["record_id"]
    item = aws.ddb.query(
        TableName="documents",
        KeyConditionExpression="pk = :t",
        ExpressionAttributeValues={":t": {"S": "acme"}},
    )["Items"]
    assert [(i["status"]["S"], i["title"]["S"]) for i in item if "status" in i] == [
        ("ready", "Refunds")
    ]


def test_a_redelivered_message_does_no_work_twice(env: tuple[ModuleType, Aws]) -> None:
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="acme/support/shipping.txt", Body=b"Shipping is free.")
    event = aws.sqs_event()
    assert module.handler(event, FakeContext()) == {"batchItemFailures": []}
    bulks = len(aws.stub.recorded("/_bulk"))
    assert module.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(aws.stub.recorded("/_bulk")) == bulks


def test_bad_files_and_foreign_keys_do_not_block_the_queue(env: tuple[ModuleType, Aws]) -> None:
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="acme/support/logo.png", Body=b"\x89PNG")
    aws.s3.put_object(Bucket=BUCKET, Key="stray-file.md", Body=b"# no tenant")
    _, response = run(module, aws)
    assert response == {"batchItemFailures": []}
    status = aws.ddb.scan(TableName="documents")["Items"]
    (failed,) = [i for i in status if i.get("status", {}).get("S") == "failed"]
    assert "logo.png: unsupported format" in failed["error"]["S"]


def test_a_backend_failure_fails_only_its_record_for_redelivery(
    env: tuple[ModuleType, Aws], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="globex/kb/a.md", Body=b"# A\n\nAlpha text.")
    aws.s3.put_object(Bucket=BUCKET, Key="globex/kb/b.md", Body=b"# B\n\nBravo text.")
    event = aws.sqs_event()
    vectors = module.components().vectors
    real_upsert = vectors.upsert

    async def flaky(records: Any) -> None:
        if any(r.payload["title"] == "B" for r in records):
            raise ConnectionError("OpenSearch unavailable")
        await real_upsert(records)

    monkeypatch.setattr(vectors, "upsert", flaky)
    response = module.handler(event, FakeContext())
    b_message = next(r["messageId"] for r in event["Records"] if "b.md" in r["body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": b_message}]}
    assert len(aws.chunks("rag/globex/kb")) == 1

    monkeypatch.setattr(vectors, "upsert", real_upsert)
    retry = {"Records": [r for r in event["Records"] if r["messageId"] == b_message]}
    assert module.handler(retry, FakeContext()) == {"batchItemFailures": []}
    assert len(aws.chunks("rag/globex/kb")) == 2


def test_removed_object_takes_its_chunks_with_it(env: tuple[ModuleType, Aws]) -> None:
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="initech/kb/gone.md", Body=b"# Gone\n\nSoon removed.")
    run(module, aws)
    assert len(aws.chunks("rag/initech/kb")) == 1
    aws.s3.delete_object(Bucket=BUCKET, Key="initech/kb/gone.md")
    _, response = run(module, aws)
    assert response == {"batchItemFailures": []}
    assert aws.chunks("rag/initech/kb") == [] and aws.text_chunks("rag/initech/kb") == []


def test_a_late_removal_of_a_recreated_key_is_skipped(env: tuple[ModuleType, Aws]) -> None:
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="initech/kb/back.md", Body=b"# Back\n\nStill here.")
    aws.s3.delete_object(Bucket=BUCKET, Key="initech/kb/back.md")
    aws.s3.put_object(Bucket=BUCKET, Key="initech/kb/back.md", Body=b"# Back\n\nStill here.")
    event = aws.sqs_event()
    bodies = [json.loads(r["body"])["Records"][0]["eventName"] for r in event["Records"]]
    assert bodies == ["ObjectCreated:Put", "ObjectRemoved:Delete", "ObjectCreated:Put"]
    assert module.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(aws.chunks("rag/initech/kb")) == 1


def test_a_new_container_finishes_what_a_dead_one_left_half_done(
    env: tuple[ModuleType, Aws],
) -> None:
    """A container killed mid-deletion leaves a document `deleting` with its chunks still
    served, one killed mid-indexing leaves it `indexing`; no event may ever come for either.
    The next container repairs both at its first batch, whatever that batch is about."""
    module, aws = env
    aws.s3.put_object(Bucket=BUCKET, Key="umbrella/kb/half-deleted.md", Body=b"# Old\n\nOld.")
    aws.s3.put_object(Bucket=BUCKET, Key="umbrella/kb/half-indexed.md", Body=b"# New\n\nNew.")
    run(module, aws)
    assert len(aws.chunks("rag/umbrella/kb")) == 2
    store = DynamoDocumentStore("documents", dynamodb=aws.ddb)
    loop = asyncio.new_event_loop()
    (deleting, indexing) = sorted(
        loop.run_until_complete(store.list_documents("umbrella", "kb")), key=lambda r: r.source_uri
    )
    an_hour_ago = time.time() - 3600
    for record, status in ((deleting, "deleting"), (indexing, "indexing")):
        record.status, record.updated_at = status, an_hour_ago
        loop.run_until_complete(store.put(record))
    old = module._runtime
    old.loop.run_until_complete(old.components.aclose())
    module._runtime = None  # the next execution environment

    aws.s3.put_object(Bucket=BUCKET, Key="umbrella/other/unrelated.md", Body=b"# Other\n\nX.")
    _, response = run(module, aws)

    assert response == {"batchItemFailures": []}
    left = loop.run_until_complete(store.list_documents("umbrella", "kb"))
    assert [(r.doc_id, r.status) for r in left] == [(indexing.doc_id, "failed")]
    assert aws.chunks("rag/umbrella/kb") and all(
        c["payload"]["doc_id"] == indexing.doc_id for c in aws.chunks("rag/umbrella/kb")
    )
    assert loop.run_until_complete(store.list_unfinished()) == []
    loop.close()
