"""The ingestion service over the real SQLite stores: idempotent, replace, delete, failures."""

from __future__ import annotations

import asyncio

import pytest
from lockgate.rag.errors import InvalidName
from lockgate.rag.ingest import EMPTY_VERSION
from lockgate.rag.model import namespace

from tests.unit.rag.conftest import Rag

RETURNS = (
    b"# Returns\n\n## Policy\n\nReturn products within 30 days for a full refund.\n\n"
    b"## Timing\n\nRefunds take 5 to 7 business days.\n"
)
RETURNS_V2 = b"# Returns\n\n## Policy\n\nReturn products within 60 days for store credit.\n"
SHIPPING = b"# Shipping\n\nStandard shipping takes 3 to 5 business days.\n"
NS = namespace("acme", "kb")


async def test_ingest_indexes_both_indexes_and_reports_ready(rag: Rag) -> None:
    result = await rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS)
    assert (result.outcome, result.chunks, result.error) == ("indexed", 2, None)
    assert len(rag.vectors.ids(NS)) == 2
    assert rag.text.count(NS) == 2
    record = await rag.service.status("acme", "kb", "docs/returns.md")
    assert record is not None
    assert (record.status, record.title, record.chunk_count) == ("ready", "Returns", 2)
    hits = await rag.retriever.retrieve("acme", "kb", "how many days for a refund", 2)
    assert hits[0].title == "Returns" and hits[0].uri == "docs/returns.md"


async def test_reingesting_the_same_bytes_changes_nothing(rag: Rag) -> None:
    first = await rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS)
    calls, upserts = rag.embedder.calls, rag.vectors.upserts
    again = await rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS)
    assert again.outcome == "unchanged"
    assert again.collection_version == first.collection_version
    assert (rag.embedder.calls, rag.vectors.upserts) == (calls, upserts)


async def test_replacing_a_document_reindexes_it_and_drops_the_old_chunks(rag: Rag) -> None:
    first = await rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS)
    second = await rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS_V2)
    assert second.outcome == "replaced" and second.chunks == 1
    assert second.collection_version != first.collection_version
    assert len(rag.vectors.ids(NS)) == 1 and rag.text.count(NS) == 1
    (hit,) = await rag.retriever.retrieve("acme", "kb", "return products days", 5)
    assert "60 days" in hit.text


async def test_deleting_removes_its_chunks_and_restores_the_version(rag: Rag) -> None:
    only_shipping = await rag.service.ingest("acme", "kb", "shipping.md", SHIPPING)
    await rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS)
    deleted = await rag.service.delete("acme", "kb", "docs/returns.md")
    assert deleted.outcome == "deleted"
    assert deleted.collection_version == only_shipping.collection_version
    assert len(rag.vectors.ids(NS)) == 1 and rag.text.count(NS) == 1
    assert [d.source_uri for d in await rag.service.list_documents("acme", "kb")] == ["shipping.md"]
    assert (await rag.service.delete("acme", "kb", "docs/returns.md")).outcome == "missing"


async def test_collection_version_is_content_addressed(rag: Rag) -> None:
    assert await rag.service.collection_version("acme", "kb") == EMPTY_VERSION
    await rag.service.ingest("acme", "kb", "a.md", SHIPPING)
    await rag.service.ingest("acme", "kb", "b.md", RETURNS)
    v1 = await rag.service.collection_version("acme", "kb")
    await rag.service.ingest("acme", "kb", "b.md", RETURNS_V2)
    assert await rag.service.collection_version("acme", "kb") != v1
    await rag.service.ingest("acme", "kb", "b.md", RETURNS)
    assert await rag.service.collection_version("acme", "kb") == v1


async def test_a_bad_file_is_recorded_failed_and_not_retryable(rag: Rag) -> None:
    result = await rag.service.ingest("acme", "kb", "broken.pdf", b"%PDF-1.4 nonsense")
    assert (result.outcome, result.retryable) == ("failed", False)
    assert result.error and "broken.pdf: unreadable PDF" in result.error
    (failure,) = await rag.service.failures("acme", "kb")
    assert (failure.status, failure.error) == ("failed", result.error)
    assert rag.vectors.ids(NS) == set()


async def test_a_backend_failure_leaves_no_partial_version_and_a_retry_succeeds(rag: Rag) -> None:
    await rag.service.ingest("acme", "kb", "guide.md", RETURNS)
    big = b"# Guide\n\n" + b"\n\n".join(
        f"## Part {i}\n\nParagraph {i} about refunds and returns.".encode() for i in range(12)
    )
    rag.vectors.fail_upserts_after = rag.vectors.upserts + 1  # the second batch fails
    failed = await rag.service.ingest("acme", "kb", "guide.md", big)
    assert (failed.outcome, failed.retryable) == ("failed", True)
    assert failed.error == "ConnectionError: vector store unavailable"
    # The previous version still serves, whole; none of the failed attempt's chunks remain.
    assert len(rag.vectors.ids(NS)) == 2 and rag.text.count(NS) == 2
    hits = await rag.retriever.retrieve("acme", "kb", "refund business days", 5)
    assert {h.text for h in hits} >= {"Refunds take 5 to 7 business days."}
    record = await rag.service.status("acme", "kb", "guide.md")
    assert record is not None and record.status == "failed" and record.chunk_count == 2

    rag.vectors.fail_upserts_after = None
    retried = await rag.service.ingest("acme", "kb", "guide.md", big)
    assert (retried.outcome, retried.chunks) == ("replaced", 12)
    assert len(rag.vectors.ids(NS)) == 12 and rag.text.count(NS) == 12
    assert await rag.service.failures("acme", "kb") == []


async def test_tenants_and_collections_are_isolated(rag: Rag) -> None:
    await rag.service.ingest("acme", "kb", "returns.md", RETURNS)
    await rag.service.ingest("globex", "kb", "shipping.md", SHIPPING)
    await rag.service.ingest("acme", "other", "shipping.md", SHIPPING)
    globex = await rag.retriever.retrieve(
        "globex", "kb", "refund within 30 days", 5, min_similarity=0
    )
    assert [h.title for h in globex] == ["Shipping"]
    acme = await rag.retriever.retrieve("acme", "kb", "shipping business days", 5, min_similarity=0)
    assert all(h.title == "Returns" for h in acme)
    assert [c.collection for c in await rag.service.list_collections("acme")] == ["kb", "other"]
    assert [c.collection for c in await rag.service.list_collections("globex")] == ["kb"]
    assert await rag.service.delete_collection("acme", "kb") == 1
    assert [c.collection for c in await rag.service.list_collections("acme")] == ["other"]
    assert len(await rag.retriever.retrieve("globex", "kb", "shipping", 5, min_similarity=0)) == 1


async def test_progress_reports_chunks(rag: Rag) -> None:
    seen: list[tuple[str, int, int]] = []
    doc = b"\n\n".join(f"## S{i}\n\nText {i}.".encode() for i in range(6))
    await rag.service.ingest("acme", "kb", "p.md", doc, progress=lambda *a: seen.append(a))
    assert seen == [("p.md", 0, 6), ("p.md", 4, 6), ("p.md", 6, 6)]


@pytest.mark.parametrize("name", ["", "a/b", "../x", "-lead", "x" * 65])
async def test_names_that_could_cross_namespaces_are_refused(rag: Rag, name: str) -> None:
    with pytest.raises(InvalidName):
        await rag.service.ingest(name, "kb", "a.md", SHIPPING)
    with pytest.raises(InvalidName):
        await rag.retriever.retrieve("acme", name, "q", 3)


class _SlowListing:
    """The document store, its first collection listing held up after the read: a remote
    store's round trip, during which another document of the collection can finish."""

    def __init__(self, inner: object, hold_s: float) -> None:
        self._inner, self._hold_s = inner, hold_s

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def list_documents(self, tenant: str, collection: str) -> object:
        rows = await self._inner.list_documents(tenant, collection)  # type: ignore[attr-defined]
        if self._hold_s:
            hold, self._hold_s = self._hold_s, 0.0
            await asyncio.sleep(hold)
        return rows


async def test_documents_finishing_together_leave_the_collection_version_current(
    rag: Rag,
) -> None:
    """The version is written from a listing of the documents; a listing taken before the
    other document's flip must not be written after that document's own."""
    rag.service.documents = _SlowListing(rag.documents, hold_s=0.3)  # type: ignore[assignment]
    together = await asyncio.gather(
        rag.service.ingest("acme", "kb", "shipping.md", SHIPPING),
        rag.service.ingest("acme", "kb", "docs/returns.md", RETURNS),
    )
    assert [r.outcome for r in together] == ["indexed", "indexed"]
    rag.service.documents = rag.documents
    await rag.service.ingest("acme", "kb2", "shipping.md", SHIPPING)
    both = await rag.service.ingest("acme", "kb2", "docs/returns.md", RETURNS)
    assert await rag.service.collection_version("acme", "kb") == both.collection_version
