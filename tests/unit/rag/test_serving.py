"""Partial documents are never served (issue 9.4): retrieval sees committed versions only, a
writer killed half way leaves nothing servable, and `repair` finishes what it left.

Real SQLite stores (documents, FTS5), deterministic embedder and in-memory vectors; the
DynamoDB store under moto (emulated) for the crash markers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from lockgate.rag.retrieval import RetrievalSettings
from lockgate.rag.wiring import RagComponents, assemble
from lockgate.stores.aws.documents import DynamoDocumentStore
from lockgate.stores.embedded.documents import SqliteDocumentStore
from lockgate.stores.embedded.text_index import SqliteTextIndex
from lockgate.stores.ports import VectorRecord
from moto import mock_aws

from tests.unit.rag.fakes import HashingEmbedder, MemoryVectorIndex

OLD = b"# Returns\n\nReturn products within 30 days for a full refund.\n"
NEW = b"# Returns\n\n" + b"".join(
    f"## Part {n}\n\nReturn products within {n} days for store credit.\n\n".encode()
    for n in range(40)
)
QUERY = "return products within days refund credit"


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, not even `except Exception` handlers."""


class Interrupting(MemoryVectorIndex):
    """Runs `during` after each upsert, and dies after `die_after` upserts when set."""

    def __init__(self) -> None:
        super().__init__()
        self.during: Any = None
        self.die_after: int | None = None
        self.batches = 0

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        await super().upsert(records)
        self.batches += 1
        if self.during is not None:
            await self.during()
        if self.die_after is not None and self.batches >= self.die_after:
            raise Killed


@pytest.fixture
def rag(tmp_path: Path) -> Iterator[tuple[RagComponents, Interrupting]]:
    documents = SqliteDocumentStore(tmp_path / "rag.db")
    text = SqliteTextIndex(tmp_path / "rag.db")
    vectors = Interrupting()
    components = assemble(
        documents, text, vectors, HashingEmbedder(), settings=RetrievalSettings(min_similarity=0)
    )
    components.ingestion._batch = 4
    yield components, vectors
    documents.close()
    text.close()


async def _texts(rag: RagComponents) -> list[str]:
    return [c.text for c in await rag.retriever.retrieve("acme", "kb", QUERY, 50)]


async def test_chunks_of_a_version_being_written_are_never_retrieved(
    rag: tuple[RagComponents, Interrupting],
) -> None:
    components, vectors = rag
    await components.ingestion.ingest("acme", "kb", "returns.md", OLD)
    seen: list[list[str]] = []

    async def look() -> None:
        seen.append(await _texts(components))

    vectors.during = look
    result = await components.ingestion.ingest("acme", "kb", "returns.md", NEW)
    vectors.during = None
    assert result.outcome == "replaced" and vectors.batches > 3
    # While the new version was half written, only the old, complete one was served.
    for texts in seen[:-1]:
        assert texts and all("30 days" in t for t in texts)
    after = await _texts(components)
    assert after and all("store credit" in t for t in after)


async def test_a_writer_killed_half_way_leaves_nothing_servable_and_repair_cleans_up(
    rag: tuple[RagComponents, Interrupting],
) -> None:
    components, vectors = rag
    await components.ingestion.ingest("acme", "kb", "other.md", b"# Other\n\nUnrelated words.\n")
    vectors.die_after = 3
    with pytest.raises(Killed):
        await components.ingestion.ingest("acme", "kb", "returns.md", NEW)
    vectors.die_after = None
    record = await components.ingestion.status("acme", "kb", "returns.md")
    assert record is not None and record.status == "indexing" and record.pending_hash
    ns_ids = [i for i in vectors.ids("rag/acme/kb") if i.startswith(record.doc_id)]
    assert len(ns_ids) >= 8  # batches of the new version are in the index ...
    assert not any("store credit" in t for t in await _texts(components))  # ... and unseen

    assert await components.ingestion.repair(stale_after_s=60) == []  # maybe still alive
    (repaired,) = await components.ingestion.repair(stale_after_s=0)
    assert repaired.outcome == "failed" and repaired.retryable
    record = await components.ingestion.status("acme", "kb", "returns.md")
    assert record is not None and record.status == "failed" and "interrupted" in str(record.error)
    assert not [i for i in vectors.ids("rag/acme/kb") if i.startswith(record.doc_id)]
    assert await components.documents.list_unfinished() == []
    again = await components.ingestion.ingest("acme", "kb", "returns.md", NEW)
    assert again.outcome == "indexed"
    assert any("store credit" in t for t in await _texts(components))


async def test_a_delete_left_half_done_is_finished(
    rag: tuple[RagComponents, Interrupting],
) -> None:
    components, _ = rag
    await components.ingestion.ingest("acme", "kb", "returns.md", OLD)
    record = await components.ingestion.status("acme", "kb", "returns.md")
    assert record is not None
    record.status = "deleting"
    await components.documents.put(record)
    (result,) = await components.ingestion.repair(stale_after_s=0)
    assert result.outcome == "deleted"
    assert await components.ingestion.list_documents("acme", "kb") == []


@pytest.fixture
def dynamo() -> Iterator[DynamoDocumentStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName="documents",
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
        yield DynamoDocumentStore("documents", dynamodb=client)


async def test_dynamodb_finds_unfinished_documents_with_a_query(
    dynamo: DynamoDocumentStore,
) -> None:
    from lockgate.rag.model import DocumentRecord

    stuck = DocumentRecord("acme", "kb", "d1", "s3://b/acme/kb/a.md", status="indexing")
    done = DocumentRecord("acme", "kb", "d2", "s3://b/acme/kb/b.md", status="ready")
    going = DocumentRecord("beta", "kb", "d3", "s3://b/beta/kb/c.md", status="deleting")
    for record in (stuck, done, going):
        await dynamo.put(record)
    found = {(r.tenant, r.doc_id, r.status) for r in await dynamo.list_unfinished()}
    assert found == {("acme", "d1", "indexing"), ("beta", "d3", "deleting")}
    stuck.status = "ready"
    await dynamo.put(stuck)
    await dynamo.remove("beta", "kb", "d3")
    assert await dynamo.list_unfinished() == []
    assert await dynamo.list_documents("acme", "kb") != []
