"""Where DynamoDB exact-cache answers are stored and cleaned up (DynamoDB and S3 emulated by
moto; moto, like DynamoDB, leaves expired items in the table)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lockgate.cache.ports import CacheEntry
from lockgate.stores.aws.exact_cache import CacheValueTooLarge, DynamoExactCache
from moto import mock_aws

from tests.contract.test_exact_cache import BUCKET, NOW, Clock, create_table

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield boto3.client("dynamodb", region_name="us-east-1"), s3


@pytest.fixture
def table(aws: tuple[Any, Any]) -> str:
    name = f"cache-{uuid.uuid4().hex[:8]}"
    create_table(aws[0], name)
    return name


def cache_for(
    aws: tuple[Any, Any], table: str, clock: Clock, bucket: str | None = BUCKET
) -> DynamoExactCache:
    return DynamoExactCache(table, bucket=bucket, dynamodb=aws[0], s3=aws[1], clock=clock)


def item(aws: tuple[Any, Any], table: str, key: str) -> dict[str, Any]:
    found: dict[str, Any] = aws[0].get_item(TableName=table, Key={"pk": {"S": key}})["Item"]
    return found


def objects(aws: tuple[Any, Any]) -> set[str]:
    listed = aws[1].list_objects_v2(Bucket=BUCKET, Prefix="exact-cache/").get("Contents", [])
    return {o["Key"] for o in listed}


def entry(key: str, value: bytes, ttl: float = 60, tenant: str = "t1") -> CacheEntry:
    return CacheEntry(key=key, tenant=tenant, alias="fast", value=value, expires_at=NOW + ttl)


async def test_small_answers_are_stored_as_is_and_big_ones_compressed_or_in_s3(
    aws: tuple[Any, Any], table: str
) -> None:
    cache = cache_for(aws, table, Clock())
    before = objects(aws)
    await cache.put(entry("small", b"x" * 1000))
    await cache.put(entry("text", b"lorem ipsum " * 60_000))
    await cache.put(entry("noise", os.urandom(500_000)))

    assert item(aws, table, "small")["enc"] == {"S": "raw"}
    assert item(aws, table, "text")["enc"] == {"S": "zlib"}
    assert len(item(aws, table, "text")["value"]["B"]) < 400 * 1024
    noise = item(aws, table, "noise")
    assert noise["enc"] == {"S": "s3"} and "value" not in noise
    assert objects(aws) - before == {noise["s3_key"]["S"]}


async def test_replacing_or_purging_an_s3_answer_deletes_its_object(
    aws: tuple[Any, Any], table: str
) -> None:
    cache = cache_for(aws, table, Clock())
    await cache.put(entry("k", os.urandom(500_000), ttl=60))
    first = item(aws, table, "k")["s3_key"]["S"]

    await cache.put(entry("k", os.urandom(500_000), ttl=120))
    second = item(aws, table, "k")["s3_key"]["S"]
    assert first not in objects(aws) and second in objects(aws)

    # A losing (shorter-lived) write leaves the winner's object and removes its own upload.
    before = objects(aws)
    await cache.put(entry("k", os.urandom(500_000), ttl=30))
    assert item(aws, table, "k")["s3_key"]["S"] == second
    assert objects(aws) == before

    assert await cache.purge("t1", "fast") == 1
    assert second not in objects(aws)


async def test_a_losing_write_uploads_nothing_that_stays(aws: tuple[Any, Any], table: str) -> None:
    cache = cache_for(aws, table, Clock())
    await cache.put(entry("k", b"winner", ttl=300))
    before = objects(aws)

    await cache.put(entry("k", os.urandom(500_000), ttl=30))

    assert objects(aws) == before
    got = await cache.get("k")
    assert got is not None and got.value == b"winner"


async def test_without_a_bucket_an_oversized_answer_is_a_clear_error(
    aws: tuple[Any, Any], table: str
) -> None:
    cache = cache_for(aws, table, Clock(), bucket=None)

    with pytest.raises(CacheValueTooLarge, match="no S3 bucket"):
        await cache.put(entry("k", os.urandom(500_000)))
    assert await cache.get("k") is None


async def test_an_expired_item_still_in_the_table_is_a_miss(
    aws: tuple[Any, Any], table: str
) -> None:
    clock = Clock()
    cache = cache_for(aws, table, clock)
    await cache.put(entry("k", b"old answer", ttl=10))
    clock.now = NOW + 3600

    assert item(aws, table, "k")["value"]["B"] == b"old answer"  # DynamoDB has not deleted it
    assert await cache.get("k") is None
