"""One behaviour for every `ResponseStore` adapter (Responses API conversation state).

Backends: SQLite (real, on disk) and DynamoDB through boto3 against moto (emulated: moto never
deletes expired items itself, which is what makes the expired-on-read rule testable). The table
is created as the stack would declare it: partition key `pk` (S), TTL attribute `expires_at`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lockgate.stores.aws.responses import DynamoResponseStore
from lockgate.stores.embedded.responses import SqliteResponseStore
from lockgate.stores.responses import ResponseStore, ResponseTooLarge
from moto import mock_aws

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "dynamodb-moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[ResponseStore]:
    if request.param == "sqlite":
        sqlite = SqliteResponseStore(tmp_path / "responses.db", clock=clock)
        yield sqlite
        sqlite.close()
        return
    client = request.getfixturevalue("dynamodb")
    table = f"lockgate-responses-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    yield DynamoResponseStore(table, dynamodb=client, clock=clock)


def record(text: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}],
        "response": {"id": "resp_1", "output": [{"type": "message", "content": []}]},
    }


async def test_a_record_comes_back_whole(store: ResponseStore) -> None:
    await store.put("t1", "resp_1", record("héllo"), ttl_s=60)
    assert await store.get("t1", "resp_1") == record("héllo")
    assert await store.get("t1", "resp_2") is None


async def test_tenants_never_read_each_others_records(store: ResponseStore) -> None:
    await store.put("t1", "resp_1", record("mine"), ttl_s=60)
    await store.put("t2", "resp_1", record("theirs"), ttl_s=60)
    assert await store.get("t1", "resp_1") == record("mine")
    assert await store.get("t2", "resp_1") == record("theirs")
    assert await store.get("t3", "resp_1") is None
    assert not await store.delete("t3", "resp_1")
    assert await store.get("t1", "resp_1") is not None


async def test_a_record_is_gone_from_the_moment_it_expires(
    store: ResponseStore, clock: Clock
) -> None:
    await store.put("t1", "resp_1", record("brief"), ttl_s=30)
    clock.now = NOW + 29
    assert await store.get("t1", "resp_1") is not None
    clock.now = NOW + 30
    assert await store.get("t1", "resp_1") is None
    assert not await store.delete("t1", "resp_1")


async def test_delete_removes_only_that_record(store: ResponseStore) -> None:
    await store.put("t1", "resp_1", record("a"), ttl_s=60)
    await store.put("t1", "resp_2", record("b"), ttl_s=60)
    assert await store.delete("t1", "resp_1")
    assert await store.get("t1", "resp_1") is None
    assert await store.get("t1", "resp_2") == record("b")


async def test_a_long_conversation_is_kept_or_refused_never_cut(store: ResponseStore) -> None:
    """1.2 MB of random hex (600 KB compressed): SQLite keeps it; a DynamoDB item cannot."""
    long = record(secrets.token_hex(600_000))
    if isinstance(store, DynamoResponseStore):
        with pytest.raises(ResponseTooLarge):
            await store.put("t1", "resp_big", long, ttl_s=60)
        assert await store.get("t1", "resp_big") is None
    else:
        await store.put("t1", "resp_big", long, ttl_s=60)
        assert await store.get("t1", "resp_big") == long
