"""One test set for every `DocumentStore` adapter: SQLite (real) and DynamoDB (moto, emulated)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lockgate.rag.model import DocumentRecord
from lockgate.rag.ports import DocumentStore
from lockgate.stores.aws.documents import DynamoDocumentStore
from lockgate.stores.embedded.documents import SqliteDocumentStore
from moto import mock_aws


@pytest.fixture(scope="module")
def moto() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        yield client


@pytest.fixture(params=["sqlite", "dynamodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    if request.param == "sqlite":
        sqlite = SqliteDocumentStore(tmp_path / "rag.db")
        yield sqlite
        sqlite.close()
        return
    client = request.getfixturevalue("moto")
    name = f"documents-{len(client.list_tables()['TableNames'])}"
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield DynamoDocumentStore(name, dynamodb=client)


def record(tenant: str, collection: str, doc_id: str, **fields: Any) -> DocumentRecord:
    return DocumentRecord(
        tenant, collection, doc_id, f"s3://b/{tenant}/{collection}/{doc_id}", **fields
    )


async def test_round_trip_keeps_every_field(store: DocumentStore) -> None:
    full = record(
        "acme", "kb", "d1", title="Refunds", content_hash="abc", chunk_count=3,
        pending_hash="def", pending_count=4, status="failed", error="boom", attempts=2,
        updated_at=1700000000.25, size_bytes=1234,
    )  # fmt: skip
    await store.put(full)
    assert await store.get("acme", "kb", "d1") == full
    sparse = record("acme", "kb", "d2")
    await store.put(sparse)
    assert await store.get("acme", "kb", "d2") == sparse


async def test_listing_is_scoped_to_tenant_and_collection(store: DocumentStore) -> None:
    for tenant, collection, doc in [("acme", "kb", "a"), ("acme", "kb", "b"),
                                    ("acme", "hr", "c"), ("globex", "kb", "d")]:  # fmt: skip
        await store.put(record(tenant, collection, doc))
    assert sorted(r.doc_id for r in await store.list_documents("acme", "kb")) == ["a", "b"]
    assert await store.list_collections("acme") == ["hr", "kb"]
    assert await store.list_collections("globex") == ["kb"]
    assert await store.get("globex", "kb", "a") is None
    await store.remove("acme", "kb", "a")
    assert [r.doc_id for r in await store.list_documents("acme", "kb")] == ["b"]


async def test_collection_versions(store: DocumentStore) -> None:
    assert await store.get_version("acme", "kb") is None
    await store.set_version("acme", "kb", "v1")
    await store.set_version("acme", "kb", "v2")
    assert await store.get_version("acme", "kb") == "v2"
    assert await store.get_version("globex", "kb") is None
    await store.set_version("acme", "kb", None)
    assert await store.get_version("acme", "kb") is None
