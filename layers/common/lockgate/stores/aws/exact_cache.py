"""The exact cache in DynamoDB, with S3 for answers too big for an item.

Key design: the table's partition key `pk` is the cache key (a lookup is one GetItem); a global
secondary index `by_scope` (partition `tenant`, sort `alias`, projecting `s3_key`) finds a
tenant's or an alias's items for a purge without a scan.

TTL: `expires_at` (epoch seconds) is the table's TTL attribute, and since DynamoDB deletes
expired items lazily (up to days later), a read treats an expired item as a miss.

Writes are conditional: an entry replaces the stored one only if it lives at least as long (or
the stored one has expired), so a slow request finishing late cannot put an older answer back.

Size: an item is at most 400 KB. Values that do not fit are zlib-compressed; if they still do
not fit, the compressed bytes go to S3 under a unique key (so a losing conditional write never
clobbers the winner's object) and the item keeps the pointer.

boto3 is synchronous: every call runs in the store pool (`lockgate.stores.offload`).
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from lockgate.cache.ports import CacheEntry
from lockgate.stores.offload import offload

log = logging.getLogger(__name__)

ITEM_LIMIT = 400 * 1024
# Room for the other attributes and DynamoDB's per-attribute overhead.
_HEADROOM = 2048
INDEX_NAME = "by_scope"
S3_PREFIX = "exact-cache/"

Item = dict[str, dict[str, Any]]

# Replace only a missing item, one that lives no longer than the new one, or an expired one.
_FRESHER = "attribute_not_exists(pk) OR expires_at <= :e OR expires_at <= :now"


class CacheValueTooLarge(ValueError):
    """A value that fits no DynamoDB item even compressed, and no bucket is configured."""


class DynamoExactCache:
    """`ExactCache` over a DynamoDB table (see `infra/components/cache.py` for its shape)."""

    def __init__(
        self,
        table_name: str,
        *,
        bucket: str | None = None,
        dynamodb: Any | None = None,
        s3: Any | None = None,
        consistent_read: bool = True,
        index_name: str = INDEX_NAME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("the exact cache needs a DynamoDB table name")
        if dynamodb is None or (bucket and s3 is None):
            import boto3

            dynamodb = dynamodb or boto3.client("dynamodb")
            s3 = s3 or (boto3.client("s3") if bucket else None)
        self._table = table_name
        self._bucket = bucket
        self._ddb = dynamodb
        self._s3 = s3
        self._consistent = consistent_read
        self._index = index_name
        self._clock = clock

    async def get(self, key: str) -> CacheEntry | None:
        return await offload(self._get, key)

    async def put(self, entry: CacheEntry) -> None:
        _check(entry)
        await offload(self._put, entry)

    async def purge(self, tenant: str, alias: str | None) -> int:
        return await offload(self._purge, tenant, alias)

    # -- blocking halves -------------------------------------------------------------------

    def _get(self, key: str) -> CacheEntry | None:
        found = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=self._consistent
        ).get("Item")
        if found is None:
            return None
        expires_at = float(found["expires_at"]["N"])
        if expires_at <= self._clock():
            return None
        value = self._value_of(found)
        if value is None:
            return None
        return CacheEntry(
            key=key,
            tenant=found["tenant"]["S"],
            alias=found["alias"]["S"],
            value=value,
            expires_at=expires_at,
        )

    def _value_of(self, item: Item) -> bytes | None:
        encoding = item["enc"]["S"]
        if encoding == "raw":
            return bytes(item["value"]["B"])
        if encoding == "zlib":
            return zlib.decompress(item["value"]["B"])
        if encoding == "s3" and self._s3 is not None and self._bucket:
            try:
                body = self._s3.get_object(Bucket=self._bucket, Key=item["s3_key"]["S"])["Body"]
            except self._s3.exceptions.NoSuchKey:
                log.warning("exact cache object missing from S3; treating as a miss")
                return None
            return zlib.decompress(body.read())
        log.warning("exact cache item with unreadable encoding %r; treating as a miss", encoding)
        return None

    def _put(self, entry: CacheEntry) -> None:
        value = bytes(entry.value)
        item: Item = {
            "pk": {"S": entry.key},
            "tenant": {"S": entry.tenant},
            "alias": {"S": entry.alias},
            "expires_at": {"N": _number(entry.expires_at)},
        }
        budget = ITEM_LIMIT - _HEADROOM - _size(item)
        s3_key = None
        if len(value) <= budget:
            item["enc"], item["value"] = {"S": "raw"}, {"B": value}
        else:
            packed = zlib.compress(value, 6)
            if len(packed) <= budget:
                item["enc"], item["value"] = {"S": "zlib"}, {"B": packed}
            else:
                s3_key = self._upload(packed)
                item["enc"], item["s3_key"] = {"S": "s3"}, {"S": s3_key}
        try:
            old = self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=_FRESHER,
                ExpressionAttributeValues={
                    ":e": {"N": _number(entry.expires_at)},
                    ":now": {"N": _number(self._clock())},
                },
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        except self._ddb.exceptions.ConditionalCheckFailedException:
            # A longer-lived answer is already stored: keep it, and drop what we uploaded.
            if s3_key is not None:
                self._delete_objects([s3_key])
            return
        if old and "s3_key" in old:
            self._delete_objects([old["s3_key"]["S"]])

    def _upload(self, packed: bytes) -> str:
        if self._s3 is None or not self._bucket:
            raise CacheValueTooLarge(
                f"cache value is {len(packed)} bytes compressed, over DynamoDB's item limit, "
                "and no S3 bucket is configured for large values"
            )
        key = f"{S3_PREFIX}{uuid.uuid4().hex}"
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=packed)
        return key

    def _purge(self, tenant: str, alias: str | None) -> int:
        removed = 0
        keys: list[Item] = []
        objects: list[str] = []
        for item in self._scope(tenant, alias):
            keys.append({"pk": item["pk"]})
            if "s3_key" in item:
                objects.append(item["s3_key"]["S"])
            if len(keys) == 25:
                removed += self._delete_items(keys)
                keys = []
        removed += self._delete_items(keys)
        self._delete_objects(objects)
        return removed

    def _scope(self, tenant: str, alias: str | None) -> Iterator[Item]:
        condition = "#t = :t"
        values: Item = {":t": {"S": tenant}}
        names = {"#t": "tenant"}
        if alias is not None:
            condition += " AND #a = :a"
            values[":a"] = {"S": alias}
            names["#a"] = "alias"
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=self._index,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        for page in pages:
            yield from page.get("Items", [])

    def _delete_items(self, keys: list[Item]) -> int:
        if not keys:
            return 0
        pending: list[dict[str, Any]] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for attempt in range(8):
            left = self._ddb.batch_write_item(RequestItems={self._table: pending}).get(
                "UnprocessedItems", {}
            )
            pending = left.get(self._table, [])
            if not pending:
                return len(keys)
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise RuntimeError(f"DynamoDB left {len(pending)} cache deletions unprocessed")

    def _delete_objects(self, keys: list[str]) -> None:
        if self._s3 is None or not self._bucket:
            return
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._s3.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
            )


def _number(value: float) -> str:
    return repr(float(value))


def _size(item: Item) -> int:
    """DynamoDB's item size: attribute names plus values (numbers at their worst, 21 bytes)."""
    total = 0
    for name, value in item.items():
        ((kind, raw),) = value.items()
        total += len(name.encode()) + (
            21 if kind == "N" else len(raw if kind == "B" else raw.encode())
        )
    return total


def _check(entry: CacheEntry) -> None:
    if not entry.key or not entry.tenant or not entry.alias:
        raise ValueError("a cache entry needs a key, a tenant and an alias")
    if not isinstance(entry.value, bytes | bytearray | memoryview):
        raise TypeError(f"a cache entry's value must be bytes, not {type(entry.value).__name__}")
