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
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import ClientError
from lockgate.rag import wiring
from lockgate.rag.errors import InvalidName
from lockgate.rag.s3_events import NotAnObjectEvent, ObjectEvent, parse_message

logger = Logger(service="lockgate-ingest")
tracer = Tracer(service="lockgate-ingest")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Lockgate"))

processor = BatchProcessor(event_type=EventType.SQS)
idempotency = IdempotencyConfig(
    event_key_jmespath="id",
    expires_after_seconds=int(os.environ.get("LOCKGATE_IDEMPOTENCY_TTL_S", str(24 * 3600))),
)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["LOCKGATE_IDEMPOTENCY_TABLE"])

_loop = asyncio.new_event_loop()
_s3 = boto3.client("s3")
_components: wiring.RagComponents | None = None


class RetryableIngestError(RuntimeError):
    """Fails the SQS record so it is redelivered (and lands in the DLQ if it keeps failing)."""


async def _rag() -> wiring.RagComponents:
    global _components
    if _components is None:
        _components = await wiring.aws()
    return _components


def components() -> wiring.RagComponents:
    """The service and its adapters, built once per execution environment."""
    return _loop.run_until_complete(_rag())


@idempotent_function(
    data_keyword_argument="event", config=idempotency, persistence_store=persistence
)
def handle_object(event: dict[str, Any]) -> dict[str, Any]:
    object_event = ObjectEvent(**{k: v for k, v in event.items() if k != "id"})
    return _loop.run_until_complete(_apply(object_event))


async def _apply(event: ObjectEvent) -> dict[str, Any]:
    rag = await _rag()
    if event.kind == "removed":
        if _exists(event):
            logger.info("object exists again; removal skipped", extra={"key": event.key})
            return {"outcome": "skipped"}
        result = await rag.ingestion.delete(event.tenant, event.collection, event.source_uri)
    else:
        try:
            response = _s3.get_object(Bucket=event.bucket, Key=event.key)
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
    metrics.add_metric(name=f"Ingest_{result.outcome}", unit=MetricUnit.Count, value=1)
    if result.outcome == "failed" and result.retryable:
        raise RetryableIngestError(result.error or "ingestion failed")
    return {"outcome": result.outcome, "chunks": result.chunks}


def _exists(event: ObjectEvent) -> bool:
    try:
        _s3.head_object(Bucket=event.bucket, Key=event.key)
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


def record_handler(record: SQSRecord) -> None:
    try:
        events = parse_message(record.body)
    except (NotAnObjectEvent, InvalidName) as exc:
        # Redelivery cannot fix a malformed message or a key outside the layout.
        logger.warning("message skipped", extra={"reason": str(exc)})
        metrics.add_metric(name="Ingest_skipped", unit=MetricUnit.Count, value=1)
        return
    for event in events:
        handle_object(event={"id": event.idempotency_key, **_fields(event)})


def _fields(event: ObjectEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in ObjectEvent.__slots__}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
