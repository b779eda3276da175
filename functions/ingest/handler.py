"""Lambda entry: S3 object created/removed notifications, delivered through SQS, into the RAG
ingestion service.

S3 → SQS → this function: SQS buffers bursts (a bulk upload), retries what failed and moves a
message that keeps failing to the dead-letter queue. The batch is processed record by record
with partial failure reporting, so one bad message does not replay the good ones. Each object
event runs once per (key, etag/version) (Powertools idempotency, DynamoDB), and the service is
idempotent by content hash as well.

Retry policy: a backend failure (OpenSearch, DynamoDB, S3) fails the record, so SQS redelivers
it; a bad document (unsupported, corrupt) is recorded `failed` in the document table and the
record succeeds, since a retry would fail the same way. Events can arrive out of order: a create
whose object is gone, or a removal whose key exists again, is skipped, the later event wins.

Cold start: importing this module only defines; Powertools (with the X-Ray SDK), the boto3
clients and the RAG components (OpenSearch, the embedding model) are built by the first
invocation (`runtime()`), so a failing dependency is a failed batch with a log line that SQS
retries, not an init crash loop, and the import stays well under the init phase's budget.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from lockgate.rag import wiring
    from lockgate.rag.s3_events import ObjectEvent


class RetryableIngestError(RuntimeError):
    """Fails the SQS record so it is redelivered (and lands in the DLQ if it keeps failing)."""


class Runtime:
    """What the handler uses, built once per execution environment on its first invocation."""

    def __init__(self) -> None:
        import asyncio

        import boto3
        from aws_lambda_powertools import Logger, Metrics, Tracer
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self.logger = Logger(service="lockgate-ingest")
        # Only the AWS SDK is traced: patching every supported library costs ~0.5 s at start.
        self.tracer = Tracer(service="lockgate-ingest", patch_modules=("botocore",))
        self.metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Lockgate"))
        self.processor = BatchProcessor(event_type=EventType.SQS)
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="id",
            expires_after_seconds=int(os.environ.get("LOCKGATE_IDEMPOTENCY_TTL_S", str(24 * 3600))),
        )
        persistence = DynamoDBPersistenceLayer(table_name=os.environ["LOCKGATE_IDEMPOTENCY_TABLE"])
        self.loop = asyncio.new_event_loop()
        self.s3 = boto3.client("s3")
        self.components: wiring.RagComponents | None = None
        self.handle_object = idempotent_function(
            data_keyword_argument="event", config=self.idempotency, persistence_store=persistence
        )(self._handle_object)
        self.entry = self.logger.inject_lambda_context(
            self.tracer.capture_lambda_handler(self.metrics.log_metrics(self._handle))
        )

    async def rag(self) -> wiring.RagComponents:
        if self.components is None:
            from lockgate.rag import wiring
            from lockgate.settings import Settings

            self.components = await wiring.aws(Settings.from_env())
            await self.repair(self.components)
        return self.components

    async def repair(self, components: wiring.RagComponents) -> None:
        """Finishes what a container that died mid-way (timeout, out of memory) left `indexing`
        or `deleting`, once per container: one DynamoDB Query when nothing is stuck. Locally a
        background task repeats this; a Lambda container runs only while it handles a batch,
        and no new event may ever come for a stuck document. Rows touched recently may belong
        to a live container and are left to a later one. A failed repair is logged and does
        not fail the batch: the next container tries again."""
        try:
            repaired = await components.ingestion.repair()
        except Exception:
            self.logger.exception("repairing interrupted documents failed")
            return
        for result in repaired:
            self.logger.warning(
                "interrupted document repaired",
                extra={"uri": result.source_uri, "outcome": result.outcome},
            )

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        self.idempotency.register_lambda_context(context)
        return process_partial_response(
            event=event,
            record_handler=self.record_handler,
            processor=self.processor,
            context=context,
        )

    def record_handler(self, record: SQSRecord) -> None:
        from aws_lambda_powertools.metrics import MetricUnit
        from lockgate.rag.errors import InvalidName
        from lockgate.rag.s3_events import NotAnObjectEvent, parse_message

        try:
            events = parse_message(record.body)
        except (NotAnObjectEvent, InvalidName) as exc:
            # Redelivery cannot fix a malformed message or a key outside the layout.
            self.logger.warning("message skipped", extra={"reason": str(exc)})
            self.metrics.add_metric(name="Ingest_skipped", unit=MetricUnit.Count, value=1)
            return
        for event in events:
            self.handle_object(event={"id": event.idempotency_key, **_fields(event)})

    def _handle_object(self, event: dict[str, Any]) -> dict[str, Any]:
        from lockgate.rag.s3_events import ObjectEvent

        object_event = ObjectEvent(**{k: v for k, v in event.items() if k != "id"})
        return self.loop.run_until_complete(_apply(self, object_event))


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def components() -> wiring.RagComponents:
    """The service and its adapters, built once per execution environment."""
    rt = runtime()
    return rt.loop.run_until_complete(rt.rag())


async def _apply(rt: Runtime, event: ObjectEvent) -> dict[str, Any]:
    from aws_lambda_powertools.metrics import MetricUnit
    from botocore.exceptions import ClientError

    logger, rag = rt.logger, await rt.rag()
    if event.kind == "removed":
        if _exists(rt, event):
            logger.info("object exists again; removal skipped", extra={"key": event.key})
            return {"outcome": "skipped"}
        result = await rag.ingestion.delete(event.tenant, event.collection, event.source_uri)
    else:
        try:
            response = rt.s3.get_object(Bucket=event.bucket, Key=event.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                logger.info("object gone; creation skipped", extra={"key": event.key})
                return {"outcome": "skipped"}
            raise
        content = response["Body"].read()
        result = await rag.ingestion.ingest(
            event.tenant,
            event.collection,
            event.source_uri,
            content,
            filename=event.filename,
            content_type=_content_type(response.get("ContentType")),
        )
    logger.info(
        "ingest",
        extra={
            "key": event.key,
            "tenant": event.tenant,
            "collection": event.collection,
            "outcome": result.outcome,
            "chunks": result.chunks,
            "error": result.error,
            "seconds": round(result.seconds, 3),
        },
    )
    rt.metrics.add_metric(name=f"Ingest_{result.outcome}", unit=MetricUnit.Count, value=1)
    if result.outcome == "failed" and result.retryable:
        raise RetryableIngestError(result.error or "ingestion failed")
    return {"outcome": result.outcome, "chunks": result.chunks}


def _exists(rt: Runtime, event: ObjectEvent) -> bool:
    from botocore.exceptions import ClientError

    try:
        rt.s3.head_object(Bucket=event.bucket, Key=event.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _content_type(value: str | None) -> str | None:
    """S3's default `binary/octet-stream` says nothing; the file extension decides then."""
    if not value or value.split(";")[0].strip() in (
        "binary/octet-stream",
        "application/octet-stream",
    ):
        return None
    return value


def _fields(event: ObjectEvent) -> dict[str, Any]:
    from lockgate.rag.s3_events import ObjectEvent

    return {name: getattr(event, name) for name in ObjectEvent.__slots__}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    entry: dict[str, Any] = runtime().entry(event, context)
    return entry
