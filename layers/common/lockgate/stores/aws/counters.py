"""Rate-window counters and usage totals in DynamoDB (see `infra/components/tenants.py`).

Counters: one item per window counter (`pk` = counter key, `sk` = `n`), with `expires_at` as the
table's TTL attribute. An acquire is one `TransactWriteItems` of `UpdateItem ADD` operations,
each conditional on the counter staying within its limit
(`attribute_not_exists(v) OR v <= :room`): all counters move or none, across every Lambda
instance, with no read-modify-write race. The values for the response headers are then read
with a consistent `BatchGetItem`. A transaction cancelled only because another one held a
counter (`TransactionConflict`) wrote nothing and is sent again (`retry.retry_conflicts`), so
hot counters stay exact without surfacing the conflict as an error.

Usage: `pk` = `usage#<tenant>#<YYYY-MM>`, `sk` = the dim; totals added with `ADD` in one
transaction, so `GET /v1/usage` and the budget check are a single Query on one tenant's
partition (no other tenant's items can come back).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from lockgate.limits.ports import Acquired, Increment, UsageTotals
from lockgate.stores.aws.retry import retry_conflicts

COUNTER_SK = "n"


class DynamoCounterStore:
    def __init__(self, table_name: str, *, dynamodb: Any | None = None) -> None:
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        self._db = dynamodb
        self._table = table_name

    def acquire(self, increments: Sequence[Increment], expires_at: float) -> Acquired:
        if not increments:
            return Acquired(True, {})
        items = []
        for inc in increments:
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": _key(inc.key),
                "UpdateExpression": "ADD v :a SET expires_at = :e",
                "ExpressionAttributeValues": {
                    ":a": {"N": str(inc.amount)},
                    ":e": {"N": str(int(inc.expires_at or expires_at))},
                },
            }
            if inc.limit is not None:
                update["ConditionExpression"] = "attribute_not_exists(v) OR v <= :room"
                update["ExpressionAttributeValues"][":room"] = {"N": str(inc.limit - inc.amount)}
            items.append({"Update": update})
        try:
            retry_conflicts(lambda: self._db.transact_write_items(TransactItems=items))
        except self._db.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            refused = next(
                (
                    inc.key
                    for inc, reason in zip(increments, reasons, strict=False)
                    if reason.get("Code") == "ConditionalCheckFailed"
                ),
                None,
            )
            if refused is None:
                raise
            return Acquired(False, self.values([i.key for i in increments]), refused)
        return Acquired(True, self.values([i.key for i in increments]))

    def adjust(self, key: str, delta: int, expires_at: float) -> None:
        retry_conflicts(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=_key(key),
                UpdateExpression="ADD v :a SET expires_at = if_not_exists(expires_at, :e)",
                ExpressionAttributeValues={
                    ":a": {"N": str(delta)},
                    ":e": {"N": str(int(expires_at))},
                },
            )
        )

    def values(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        response = self._db.batch_get_item(
            RequestItems={self._table: {"Keys": [_key(k) for k in unique], "ConsistentRead": True}}
        )
        found = response["Responses"].get(self._table, [])
        return {item["pk"]["S"]: int(item["v"]["N"]) for item in found if "v" in item}


class DynamoUsageStore:
    def __init__(self, table_name: str, *, dynamodb: Any | None = None) -> None:
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        self._db = dynamodb
        self._table = table_name

    def add(self, tenant_id: str, period: str, dims: Sequence[str], totals: UsageTotals) -> None:
        names = UsageTotals.counted()
        expression = "ADD " + ", ".join(f"{name} :{name}" for name in names)
        values = {f":{name}": {"N": _number(getattr(totals, name))} for name in names}
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {
                        "pk": {"S": _usage_pk(tenant_id, period)},
                        "sk": {"S": dim},
                    },
                    "UpdateExpression": expression,
                    "ExpressionAttributeValues": values,
                }
            }
            for dim in dims
        ]
        retry_conflicts(lambda: self._db.transact_write_items(TransactItems=items))

    def totals(self, tenant_id: str, period: str) -> dict[str, UsageTotals]:
        out: dict[str, UsageTotals] = {}
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": _usage_pk(tenant_id, period)}},
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                totals = UsageTotals()
                for name in UsageTotals.counted():
                    if name in item:
                        current = getattr(totals, name)
                        setattr(totals, name, type(current)(Decimal(item[name]["N"])))
                out[item["sk"]["S"]] = totals
        return out


def _key(counter: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": counter}, "sk": {"S": COUNTER_SK}}


def _usage_pk(tenant_id: str, period: str) -> str:
    return f"usage#{tenant_id}#{period}"


def _number(value: float) -> str:
    """DynamoDB numbers are decimal strings; floats are rounded to 12 places to avoid
    binary noise like 0.30000000000000004."""
    if isinstance(value, int):
        return str(value)
    return format(Decimal(str(round(value, 12))), "f")
