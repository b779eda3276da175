"""The ingest function run from its built artifact, fed S3 notifications through SQS.

As in test_gateway_artifact.py: the lock built for this interpreter (3.11; Lambda's 3.12 build
differs only in compiled wheels), a fresh `python -I -S` with /var/task, /opt/python and the
runtime's boto3 only, resources created in moto's server from the synthesized template.
The bucket's notification configuration is the one the template's custom resource would apply,
so moto delivers the S3 → SQS messages (keys URL-encoded, as S3 sends them); the test drains the
queue into the SQS event the event source mapping would deliver. OpenSearch is the stub and
enforces the role's es:ESHttp* grants (403 otherwise); every SDK call is evaluated against the
role's statements in the template.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts.conftest_stack import moto_stack, synthesized_template
from tests.artifacts.harness import REGION, EmulatedStack, LambdaProcess, denied_calls
from tests.support.opensearch_stub import OpenSearchStub, opensearch_stub

pytestmark = pytest.mark.slow


class Run:
    def __init__(self, stack: EmulatedStack, process: LambdaProcess, stub: OpenSearchStub):
        self.stack, self.process, self.stub = stack, process, stub
        bucket, queue = stack.documents_source()
        self.bucket = stack.names[bucket]
        self.queue_url, self.queue_arn = stack.refs[queue], stack.arns[queue]
        self.function = stack.queue_function(queue)

    def notify_queue(self) -> None:
        """What the template's Custom::S3BucketNotifications resource configures."""
        (custom,) = [
            r for r in self.stack.resources.values() if r["Type"] == "Custom::S3BucketNotifications"
        ]
        config = self.stack.resolve(custom["Properties"]["NotificationConfiguration"])
        self.stack.client("s3").put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration=config
        )

    def sqs_event(self) -> dict[str, Any]:
        sqs = self.stack.client("sqs")
        records = []
        while batch := sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
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
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return {"Records": records}


@pytest.fixture(scope="module")
def run(local_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("ingest-artifact")
    with moto_stack(synthesized_template()) as stack, opensearch_stub() as (search_url, stub):
        function = stack.queue_function(stack.documents_source()[1])
        policy = stack.policy(function)
        domain = stack.arns[stack.domain(function)]
        stub.authorize = lambda method, path: policy.es_allows(domain, method, path)
        env = {
            **stack.environment(function),
            "AWS_ENDPOINT_URL": stack.endpoint,
            "LOCKGATE_OPENSEARCH_URL": search_url,
            "LOCKGATE_DATA_DIR": str(work / "tmp"),
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        process = LambdaProcess(local_build, "ingest", env, work, handler="handler.handler")
        result = Run(stack, process.start(), stub)
        result.notify_queue()
        try:
            yield result
        finally:
            process.stop()


def test_an_uploaded_document_is_indexed_from_the_artifact(run: Run) -> None:
    s3 = run.stack.client("s3")
    body = b"# Refunds\n\n## How long?\n\nRefunds reach your card within 5 to 7 business days.\n"
    s3.put_object(Bucket=run.bucket, Key="acme/support/help centre/refunds.md", Body=body)
    event = run.sqs_event()
    assert event["Records"], "moto delivered no S3 notification"
    assert run.process.invoke(event) == {"batchItemFailures": []}
    vectors = [
        doc
        for index in run.stub.indices.values()
        for doc in index.docs.values()
        if doc.get("namespace") == "rag/acme/support"
    ]
    assert vectors and any(len(doc.get("vector", [])) == 384 for doc in vectors)
    s3.delete_object(Bucket=run.bucket, Key="acme/support/help centre/refunds.md")
    assert run.process.invoke(run.sqs_event()) == {"batchItemFailures": []}


def test_no_import_came_from_outside_the_artifact(run: Run) -> None:
    run.process.stop()
    assert run.process.modules["lockgate"].startswith(str(run.process.layer))
    assert "aws_xray_sdk" in run.process.modules  # Powertools' Tracer, from the layer
    assert run.process.leaked_modules() == {}


def test_every_call_is_granted_to_the_functions_role(run: Run) -> None:
    policy = run.stack.policy(run.function)
    calls = run.process.calls()
    assert {c["operation"] for c in calls} >= {"GetObject", "PutItem"}
    denied = denied_calls(calls, policy, run.stack)
    denied += sorted({f"es:ESHttp{r.method.capitalize()} {r.path}" for r in run.stub.denied})
    assert denied == [], "not granted:\n" + "\n".join(denied)
