"""One behaviour for every counter and usage store: SQLite (real, on disk) and DynamoDB through
boto3 against moto (emulated: moto runs the conditional `ADD` transactions but, unlike
DynamoDB, one request at a time, so parallelism here shows no lost updates in our code,
not in DynamoDB's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from lockgate.limits.ports import CounterStore, Increment, UsageStore, UsageTotals
from lockgate.stores.aws.counters import DynamoCounterStore, DynamoUsageStore
from lockgate.stores.embedded.counters import SqliteCounterStore, SqliteUsageStore
from moto import mock_aws

from tests.contract.test_tenant_store import create_tenant_table as create_pk_sk_table

EXPIRES = 1e10


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def _table(request: pytest.FixtureRequest) -> tuple[Any, str]:
    client = request.getfixturevalue("aws")
    name = f"quotas-{uuid.uuid4().hex[:8]}"
    create_pk_sk_table(client, name)
    return client, name


@pytest.fixture(params=["sqlite", "dynamodb-moto"])
def counters(request: pytest.FixtureRequest, tmp_path: Path) -> CounterStore:
    if request.param == "sqlite":
        return SqliteCounterStore(tmp_path / "c.db")
    client, name = _table(request)
    return DynamoCounterStore(name, dynamodb=client)


@pytest.fixture(params=["sqlite", "dynamodb-moto"])
def usage(request: pytest.FixtureRequest, tmp_path: Path) -> UsageStore:
    if request.param == "sqlite":
        return SqliteUsageStore(tmp_path / "u.db")
    client, name = _table(request)
    return DynamoUsageStore(name, dynamodb=client)


def test_exact_at_the_limit_and_all_or_nothing(counters: CounterStore) -> None:
    for expected in (1, 2, 3):
        result = counters.acquire([Increment("key", 1, 3), Increment("tenant", 1, 10)], EXPIRES)
        assert result.admitted and result.values == {"key": expected, "tenant": expected}
    refused = counters.acquire([Increment("tenant", 1, 10), Increment("key", 1, 3)], EXPIRES)
    assert not refused.admitted and refused.refused == "key"
    assert refused.values == {"key": 3, "tenant": 3}  # the tenant counter did not move
    assert counters.values(["key", "tenant", "never"]) == {"key": 3, "tenant": 3}


def test_amounts_larger_than_one_and_corrections(counters: CounterStore) -> None:
    assert counters.acquire([Increment("tokens", 600, 1000)], EXPIRES).admitted
    assert not counters.acquire([Increment("tokens", 401, 1000)], EXPIRES).admitted
    counters.adjust("tokens", -200, EXPIRES)  # fewer used than estimated
    assert counters.acquire([Increment("tokens", 600, 1000)], EXPIRES).values == {"tokens": 1000}
    assert counters.acquire([Increment("free", 5)], EXPIRES).values == {"free": 5}


def test_parallel_acquires_lose_no_updates_and_never_overshoot(
    counters: CounterStore, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["counters"] == "dynamodb-moto":
        pytest.skip(
            "moto's in-memory DynamoDB does not apply TransactWriteItems atomically across "
            "threads; the real service does, and the adapter's conditions are covered above"
        )

    def one(_: int) -> bool:
        return counters.acquire(
            [Increment("limited", 1, 25), Increment("all", 1)], EXPIRES
        ).admitted

    with ThreadPoolExecutor(8) as pool:
        admitted = sum(pool.map(one, range(40)))
    assert admitted == 25
    assert counters.values(["limited", "all"]) == {"limited": 25, "all": 25}


def test_usage_totals_add_up_per_tenant_and_period(usage: UsageStore) -> None:
    one = UsageTotals(
        requests=1,
        prompt_tokens=10,
        completion_tokens=5,
        billable_tokens=15,
        cost_usd=0.1,
        cache_hits=0,
        saved_usd=0.0,
    )
    hit = UsageTotals(requests=1, prompt_tokens=10, cache_hits=1, saved_usd=0.2)
    usage.add("acme", "2025-01", ["*", "alias:smart"], one)
    usage.add("acme", "2025-01", ["*", "alias:smart"], one)
    usage.add("acme", "2025-01", ["*", "key:k1"], hit)
    usage.add("globex", "2025-01", ["*"], one)
    usage.add("acme", "2025-02", ["*"], one)

    rows = usage.totals("acme", "2025-01")
    assert set(rows) == {"*", "alias:smart", "key:k1"}
    total = rows["*"]
    assert (total.requests, total.prompt_tokens, total.billable_tokens) == (3, 30, 30)
    assert total.cost_usd == pytest.approx(0.2) and total.saved_usd == pytest.approx(0.2)
    assert total.cache_hits == 1 and isinstance(total.requests, int)
    assert rows["alias:smart"].requests == 2
    assert usage.totals("globex", "2025-01")["*"].requests == 1
    assert usage.totals("nobody", "2025-01") == {}


def test_a_budget_reservation_is_conditional_and_settled_later(counters: CounterStore) -> None:
    """What `Limiter` does for a monthly token budget: reserve the estimate with the request's
    rate counters (all or nothing), then correct it with the provider's count."""
    month_end = EXPIRES + 86400 * 31
    budget = "budget:t:acme:2025-01"

    def reserve(tokens: int) -> bool:
        increments = [Increment("rpm", 1, 50), Increment(budget, tokens, 100, month_end)]
        return counters.acquire(increments, EXPIRES).admitted

    assert [reserve(30) for _ in range(4)] == [True, True, True, False]
    assert counters.values(["rpm", budget]) == {"rpm": 3, budget: 90}  # the refusal took nothing
    counters.adjust(budget, -20, month_end)  # the first request used 10 of its 30
    assert reserve(30)
    assert not reserve(1)
    assert counters.values([budget]) == {budget: 100}
