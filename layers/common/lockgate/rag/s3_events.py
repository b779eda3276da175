"""S3 event notifications (as delivered in an SQS message body) into object events.

Keys arrive URL-encoded (`+` for spaces), so they are decoded with `unquote_plus` before they
name anything. The key layout says where a file belongs: `<tenant>/<collection>/<path...>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

from lockgate.rag.errors import InvalidName
from lockgate.rag.model import check_name


class NotAnObjectEvent(ValueError):
    """A message that is not an S3 object notification (malformed, or for another purpose)."""


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    kind: Literal["created", "removed"]
    bucket: str
    key: str
    tenant: str
    collection: str
    etag: str | None
    version_id: str | None
    sequencer: str | None

    @property
    def source_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def idempotency_key(self) -> str:
        """One object version's one event: a replayed message is the same key, a new upload
        (new etag / version) is not."""
        marker = self.version_id or self.etag or self.sequencer or ""
        return f"{self.kind}:{self.bucket}/{self.key}@{marker}"


def tenant_and_collection(key: str) -> tuple[str, str]:
    parts = key.split("/")
    if len(parts) < 3 or not parts[-1]:
        raise InvalidName(f"key {key!r} must look like <tenant>/<collection>/<file>")
    return check_name("tenant", parts[0]), check_name("collection", parts[1])


def parse_message(body: str | dict[str, Any]) -> list[ObjectEvent]:
    """The object events in one SQS message body; [] for S3's `s3:TestEvent`."""
    try:
        message = json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError:
        raise NotAnObjectEvent("message body is not JSON") from None
    if not isinstance(message, dict):
        raise NotAnObjectEvent("message body is not an object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise NotAnObjectEvent("message has no S3 Records")
    return [_event(record) for record in records]


def _event(record: dict[str, Any]) -> ObjectEvent:
    name = str(record.get("eventName", ""))
    if name.startswith("ObjectCreated:"):
        kind: Literal["created", "removed"] = "created"
    elif name.startswith("ObjectRemoved:"):
        kind = "removed"
    else:
        raise NotAnObjectEvent(f"unexpected S3 event {name!r}")
    try:
        bucket = str(record["s3"]["bucket"]["name"])
        obj = record["s3"]["object"]
        key = unquote_plus(str(obj["key"]))
    except (KeyError, TypeError):
        raise NotAnObjectEvent("S3 record without bucket name or object key") from None
    tenant, collection = tenant_and_collection(key)
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,
        tenant=tenant,
        collection=collection,
        etag=obj.get("eTag"),
        version_id=obj.get("versionId"),
        sequencer=obj.get("sequencer"),
    )
