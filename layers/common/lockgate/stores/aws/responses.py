"""Responses API conversation state in DynamoDB.

One item per response: partition key `pk` = `<tenant>#<response id>` (so a tenant can only
ever read its own), the conversation as zlib-compressed JSON in `body`, and `expires_at`
(epoch seconds) as the table's TTL attribute. DynamoDB deletes expired items lazily, so a
read treats an expired item as missing. An item holds at most 400 KB: a longer conversation
is refused with `ResponseTooLarge` rather than cut.

boto3 is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from lockgate.stores.offload import offload
from lockgate.stores.responses import ResponseTooLarge, StoredResponse

ITEM_LIMIT = 400 * 1024 - 1024
"""DynamoDB's item limit, less room for the key and the other attributes."""


class DynamoResponseStore:
    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: Any | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("the response store needs a DynamoDB table name")
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        self._table = table_name
        self._ddb = dynamodb
        self._clock = clock

    async def put(
        self, tenant_id: str, response_id: str, record: StoredResponse, ttl_s: float
    ) -> None:
        body = zlib.compress(orjson.dumps(record), 6)
        if len(body) > ITEM_LIMIT:
            raise ResponseTooLarge(
                f"conversation of {len(body)} compressed bytes exceeds the store's {ITEM_LIMIT}"
            )
        item = {
            "pk": {"S": _key(tenant_id, response_id)},
            "body": {"B": body},
            "expires_at": {"N": str(math.ceil(self._clock() + ttl_s))},
        }
        await offload(self._ddb.put_item, TableName=self._table, Item=item)

    async def get(self, tenant_id: str, response_id: str) -> StoredResponse | None:
        found = await offload(
            self._ddb.get_item,
            TableName=self._table,
            Key={"pk": {"S": _key(tenant_id, response_id)}},
            ConsistentRead=True,
        )
        item = found.get("Item")
        if item is None or float(item["expires_at"]["N"]) <= self._clock():
            return None
        record: StoredResponse = orjson.loads(zlib.decompress(bytes(item["body"]["B"])))
        return record

    async def delete(self, tenant_id: str, response_id: str) -> bool:
        try:
            await offload(
                self._ddb.delete_item,
                TableName=self._table,
                Key={"pk": {"S": _key(tenant_id, response_id)}},
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _key(tenant_id: str, response_id: str) -> str:
    return f"{tenant_id}#{response_id}"
