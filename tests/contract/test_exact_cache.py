"""One behaviour for every `ExactCache` adapter.

Backends: SQLite (real, on disk) and DynamoDB + S3 through boto3 against moto (emulated: moto
never deletes expired items by itself, which is what makes the expired-on-read rule testable).
A controllable clock stands in for time on both, so TTL tests do not sleep.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lockgate.cache.ports import CacheEntry, ExactCache
from lockgate.stores.aws.exact_cache import DynamoExactCache
from lockgate.stores.embedded.exact_cache import SqliteExactCache
from moto import mock_aws

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = 1_800_000_000.0
TABLE, BUCKET = "lockgate-exact-cache", "lockgate-cache-blobs"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def create_table(client: Any, name: str = TABLE) -> None:
    """The table as `infra/components/cache.py` declares it."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "tenant", "AttributeType": "S"},
            {"AttributeName": "alias", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_scope",
                "KeySchema": [
                    {"AttributeName": "tenant", "KeyType": "HASH"},
                    {"AttributeName": "alias", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["s3_key"]},
            }
        ],
    )


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, Any]]:
    """moto for the module (starting it is the slow part); each test gets its own table."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield dynamodb, s3


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "dynamodb-moto"])
def cache(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[ExactCache]:
    if request.param == "sqlite":
        store = SqliteExactCache(tmp_path / "cache.db", clock=clock)
        yield store
        store.close()
    else:
        dynamodb, s3 = request.getfixturevalue("aws")
        table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
        create_table(dynamodb, table)
        yield DynamoExactCache(table, bucket=BUCKET, dynamodb=dynamodb, s3=s3, clock=clock)


def entry(
    key: str, tenant: str = "t1", alias: str = "fast", value: bytes = b"answer", ttl: float = 60
) -> CacheEntry:
    return CacheEntry(key=key, tenant=tenant, alias=alias, value=value, expires_at=NOW + ttl)


async def test_a_stored_entry_comes_back_whole_and_an_unknown_key_misses(
    cache: ExactCache,
) -> None:
    stored = entry("k1", value=b'{"choices": [1]}')
    await cache.put(stored)

    assert await cache.get("k1") == stored
    assert await cache.get("k2") is None


async def test_an_entry_is_a_miss_from_the_moment_it_expires(
    cache: ExactCache, clock: Clock
) -> None:
    await cache.put(entry("k1", ttl=30))

    clock.now = NOW + 29.9
    assert await cache.get("k1") is not None
    clock.now = NOW + 30
    assert await cache.get("k1") is None


async def test_a_shorter_lived_write_does_not_replace_a_fresher_entry(
    cache: ExactCache, clock: Clock
) -> None:
    await cache.put(entry("k1", value=b"fresh", ttl=300))
    await cache.put(entry("k1", value=b"stale", ttl=100))
    got = await cache.get("k1")
    assert got is not None and got.value == b"fresh"

    await cache.put(entry("k1", value=b"fresher", ttl=400))
    got = await cache.get("k1")
    assert got is not None and got.value == b"fresher"

    # Once the stored entry has expired, any new answer replaces it.
    clock.now = NOW + 500
    await cache.put(entry("k1", value=b"new", ttl=550))
    got = await cache.get("k1")
    assert got is not None and got.value == b"new"


async def test_purging_a_tenant_removes_all_its_aliases_and_nothing_else(
    cache: ExactCache,
) -> None:
    for key, tenant, alias in [
        ("a", "t1", "fast"),
        ("b", "t1", "smart"),
        ("c", "t2", "fast"),
        ("d", "t10", "fast"),
    ]:
        await cache.put(entry(key, tenant=tenant, alias=alias))

    assert await cache.purge("t1", None) == 2

    assert await cache.get("a") is None and await cache.get("b") is None
    assert await cache.get("c") is not None and await cache.get("d") is not None
    assert await cache.purge("t1", None) == 0


async def test_purging_one_alias_keeps_the_tenants_other_aliases(cache: ExactCache) -> None:
    await cache.put(entry("a", alias="fast"))
    await cache.put(entry("b", alias="smart"))
    await cache.put(entry("c", tenant="t2", alias="fast"))

    assert await cache.purge("t1", "fast") == 1

    assert await cache.get("a") is None
    assert await cache.get("b") is not None
    assert await cache.get("c") is not None


@pytest.mark.parametrize("size", [600 * 1024, 2 * 1024 * 1024])
async def test_values_bigger_than_a_dynamodb_item_round_trip(cache: ExactCache, size: int) -> None:
    compressible = (b"The quick brown fox jumps over the lazy dog. " * (size // 44 + 1))[:size]
    incompressible = os.urandom(size)
    await cache.put(entry("text", value=compressible))
    await cache.put(entry("noise", value=incompressible))

    text, noise = await cache.get("text"), await cache.get("noise")

    assert text is not None and text.value == compressible
    assert noise is not None and noise.value == incompressible
    assert await cache.purge("t1", None) == 2
    assert await cache.get("noise") is None


async def test_an_entry_without_scope_is_refused(cache: ExactCache) -> None:
    with pytest.raises(ValueError, match="tenant"):
        await cache.put(entry("k", tenant=""))
    with pytest.raises(ValueError, match="alias"):
        await cache.put(entry("k", alias=""))
