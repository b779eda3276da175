"""DynamoDB counters under transaction conflicts, through boto3 against moto.

moto applies transactions one at a time and never cancels one for `TransactionConflict`, so the
conflicts here are injected: a `before-call` hook answers the first attempts with the error
DynamoDB sends (`TransactionCanceledException` with a `TransactionConflict` cancellation reason,
or `TransactionConflictException` for a plain update), and later attempts reach moto, which
executes them. What is verified: the adapter retries what DynamoDB would have retried, counts
once, and gives up after a bounded number of attempts; that DynamoDB cancels such transactions
is known only from its documentation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from lockgate.limits.ports import Increment, UsageTotals
from lockgate.stores.aws import retry
from lockgate.stores.aws.counters import DynamoCounterStore, DynamoUsageStore
from moto import mock_aws

from tests.contract.test_tenant_store import create_tenant_table

EXPIRES = 1e10


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield client


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", pauses.append)
    return pauses


def table(client: Any) -> str:
    name = f"quotas-{uuid.uuid4().hex[:8]}"
    create_tenant_table(client, name)
    return name


class Conflicts:
    """Answers the first `times` calls of an operation with a conflict, then lets them through."""

    def __init__(self, client: Any, operation: str, times: int) -> None:
        self.left = times
        self.calls = 0
        self.operation = operation
        client.meta.events.register(f"before-call.dynamodb.{operation}", self)

    def __call__(self, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls += 1
        if self.left == 0:
            return None
        self.left -= 1
        if self.operation == "TransactWriteItems":
            items = json.loads(kwargs["params"]["body"])["TransactItems"]
            parsed: dict[str, Any] = {
                "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                "CancellationReasons": [
                    {"Code": "TransactionConflict", "Message": "Transaction is ongoing"}
                    if i == 0
                    else {"Code": "None"}
                    for i in range(len(items))
                ],
            }
        else:
            parsed = {"Error": {"Code": "TransactionConflictException", "Message": "conflict"}}
        return AWSResponse("https://dynamodb", 400, {}, None), parsed


def test_a_conflicted_acquire_is_retried_and_counted_once(
    dynamodb: Any, no_sleeping: list[float]
) -> None:
    counters = DynamoCounterStore(table(dynamodb), dynamodb=dynamodb)
    conflicts = Conflicts(dynamodb, "TransactWriteItems", times=3)
    result = counters.acquire([Increment("rpm", 1, 5), Increment("tpm", 40, 100)], EXPIRES)
    assert result.admitted
    assert result.values == {"rpm": 1, "tpm": 40}
    assert conflicts.calls == 4
    assert len(no_sleeping) == 3 and all(0 <= p <= retry.CAP_S for p in no_sleeping)


def test_conflicts_do_not_hide_a_refusal(dynamodb: Any) -> None:
    counters = DynamoCounterStore(table(dynamodb), dynamodb=dynamodb)
    assert counters.acquire([Increment("rpm", 1, 1)], EXPIRES).admitted
    Conflicts(dynamodb, "TransactWriteItems", times=2)
    refused = counters.acquire([Increment("rpm", 1, 1)], EXPIRES)
    assert not refused.admitted and refused.refused == "rpm"
    assert counters.values(["rpm"]) == {"rpm": 1}


def test_retries_are_bounded(dynamodb: Any) -> None:
    counters = DynamoCounterStore(table(dynamodb), dynamodb=dynamodb)
    conflicts = Conflicts(dynamodb, "TransactWriteItems", times=100)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        counters.acquire([Increment("rpm", 1, 5)], EXPIRES)
    assert conflicts.calls == retry.ATTEMPTS
    assert counters.values(["rpm"]) == {}


def test_corrections_and_usage_writes_retry_their_conflicts(dynamodb: Any) -> None:
    name = table(dynamodb)
    counters = DynamoCounterStore(name, dynamodb=dynamodb)
    usage = DynamoUsageStore(name, dynamodb=dynamodb)
    assert counters.acquire([Increment("tpm", 50, 100)], EXPIRES).admitted
    Conflicts(dynamodb, "UpdateItem", times=2)
    counters.adjust("tpm", -20, EXPIRES)
    assert counters.values(["tpm"]) == {"tpm": 30}

    Conflicts(dynamodb, "TransactWriteItems", times=2)
    usage.add("acme", "2025-01", ["*", "alias:smart"], UsageTotals(requests=1, prompt_tokens=7))
    rows = usage.totals("acme", "2025-01")
    assert rows["*"].requests == 1 and rows["alias:smart"].prompt_tokens == 7


def test_other_errors_are_not_retried(dynamodb: Any) -> None:
    counters = DynamoCounterStore("no-such-table", dynamodb=dynamodb)
    calls = Conflicts(dynamodb, "TransactWriteItems", times=0)
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        counters.acquire([Increment("rpm", 1, 5)], EXPIRES)
    assert calls.calls == 1


def test_each_counter_keeps_its_own_expiry(dynamodb: Any) -> None:
    """A month's budget counter must outlive the minute's rate counters in the table's TTL."""
    name = table(dynamodb)
    counters = DynamoCounterStore(name, dynamodb=dynamodb)
    month_end = 1_900_000_000
    counters.acquire(
        [Increment("rpm", 1, 5), Increment("budget", 9, 100, month_end)], 1_800_000_060
    )

    def expiry(key: str) -> int:
        item = dynamodb.get_item(TableName=name, Key={"pk": {"S": key}, "sk": {"S": "n"}})["Item"]
        return int(item["expires_at"]["N"])

    assert (expiry("rpm"), expiry("budget")) == (1_800_000_060, month_end)
