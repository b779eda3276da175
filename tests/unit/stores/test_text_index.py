"""The TextIndex port's embedded adapters (tantivy, SQLite FTS5): one suite, both real engines
on files in a temp dir."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lockgate.rag.ports import TextRecord
from lockgate.stores.embedded.text_index import (
    TANTIVY_DIR,
    SqliteTextIndex,
    TantivyTextIndex,
    open_text_index,
)

Index = TantivyTextIndex | SqliteTextIndex
ADAPTERS: dict[str, Callable[[Path], Index]] = {
    "tantivy": lambda root: TantivyTextIndex(root / "text"),
    "fts5": lambda root: SqliteTextIndex(root / "rag.db"),
}
NS, OTHER = "rag/acme/kb", "rag/globex/kb"


@pytest.fixture(params=list(ADAPTERS))
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Index]]:
    opened: list[Index] = []

    def factory() -> Index:
        index = ADAPTERS[request.param](tmp_path)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        index.close()


def record(id_: str, text: str, namespace: str = NS) -> TextRecord:
    return TextRecord(id_, namespace, text, {"doc_id": id_, "text": text})


async def test_ranks_by_bm25_and_returns_payloads(make: Callable[[], Index]) -> None:
    index = make()
    await index.upsert(
        [
            record("refunds", "Refunds are paid within seven days of the return."),
            record("shipping", "Parcels ship on Mondays; refunds are rare."),
            record("jobs", "We are hiring engineers."),
        ]
    )
    hits = await index.search("how long do refunds take to be paid?", namespace=NS, k=5)
    assert [h.id for h in hits] == ["refunds", "shipping"]
    assert hits[0].score > hits[1].score > 0
    assert hits[0].payload == {"doc_id": "refunds", "text": hits[0].payload["text"]}


async def test_stemming_and_diacritics_match_like_porter_unicode61(
    make: Callable[[], Index],
) -> None:
    index = make()
    await index.upsert([record("a", "The runner was running at the café.")])
    assert [h.id for h in await index.search("runs", namespace=NS, k=3)] == ["a"]
    assert [h.id for h in await index.search("CAFE", namespace=NS, k=3)] == ["a"]


async def test_another_namespace_never_shows_or_fills_the_limit(make: Callable[[], Index]) -> None:
    index = make()
    await index.upsert([record(f"o{i}", "invoice invoice invoice", OTHER) for i in range(20)])
    await index.upsert([record("mine", "one invoice here")])
    hits = await index.search("invoice", namespace=NS, k=1)
    assert [h.id for h in hits] == ["mine"]
    assert await index.search("invoice", namespace="rag/acme/none", k=5) == []


async def test_upsert_replaces_and_delete_removes(make: Callable[[], Index]) -> None:
    index = make()
    await index.upsert([record("a", "old words about llamas"), record("b", "llamas again")])
    await index.upsert([record("a", "new words about alpacas")])
    assert [h.id for h in await index.search("llamas", namespace=NS, k=5)] == ["b"]
    assert [h.id for h in await index.search("alpacas", namespace=NS, k=5)] == ["a"]
    assert index.count(NS) == 2
    await index.delete(["a"], namespace=NS)
    await index.delete(["a"], namespace=OTHER)  # another namespace's id: nothing happens
    assert await index.search("alpacas", namespace=NS, k=5) == []
    assert index.count(NS) == 1


async def test_delete_namespace_by_prefix(make: Callable[[], Index]) -> None:
    index = make()
    await index.upsert([record("a", "alpha"), record("b", "beta")])
    await index.upsert([record("c", "alpha", "rag/acme/other"), record("d", "alpha", OTHER)])
    assert await index.delete_namespace("rag/acme/") == 3
    assert index.count(NS) == 0 and index.count(OTHER) == 1
    assert await index.search("alpha", namespace=NS, k=5) == []
    assert [h.id for h in await index.search("alpha", namespace=OTHER, k=5)] == ["d"]


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NEAR(a b)", "a AND OR NOT", "title:*", "(x", "ns:rag", "^~*-+"]
)
async def test_query_syntax_is_never_interpreted(make: Callable[[], Index], query: str) -> None:
    index = make()
    await index.upsert([record("a", "title near rag x a b")])
    await index.search(query, namespace=NS, k=3)  # no error, whatever it finds


async def test_stopword_only_and_empty_queries(make: Callable[[], Index]) -> None:
    index = make()
    await index.upsert([record("a", "what is it")])
    assert [h.id for h in await index.search("what is", namespace=NS, k=3)] == ["a"]
    assert await index.search("  ?! ", namespace=NS, k=3) == []


async def test_reopened_index_keeps_its_documents(make: Callable[[], Index]) -> None:
    first = make()
    await first.upsert([record("a", "persistent zebra")])
    first.close()
    again = make()
    assert [h.id for h in await again.search("zebra", namespace=NS, k=3)] == ["a"]


async def test_tantivy_second_writer_waits_for_the_lock_and_both_see_all(tmp_path: Path) -> None:
    """Two indexes on one directory stand for the server and `lockgate ingest` in another
    process: each takes the lock only for its own commit."""
    server, cli = TantivyTextIndex(tmp_path / "t"), TantivyTextIndex(tmp_path / "t")
    await asyncio.gather(
        server.upsert([record(f"s{i}", "shared topic") for i in range(50)]),
        cli.upsert([record(f"c{i}", "shared topic") for i in range(50)]),
    )
    for _ in range(100):  # the reader notices the other writer's commit within moments
        if server.count(NS) == 100:
            break
        await asyncio.sleep(0.05)
    assert server.count(NS) == 100
    assert len(await server.search("topic", namespace=NS, k=200)) == 100


async def test_a_new_tantivy_index_takes_over_an_fts5_index(tmp_path: Path) -> None:
    old = SqliteTextIndex(tmp_path / "rag.db")
    await old.upsert([record("a", "legacy keyword"), record("b", "legacy", OTHER)])
    old.close()
    index = open_text_index(tmp_path, tmp_path / "rag.db")
    assert isinstance(index, TantivyTextIndex)
    assert (tmp_path / TANTIVY_DIR).is_dir()
    assert [h.id for h in await index.search("keyword", namespace=NS, k=3)] == ["a"]
    assert index.count(OTHER) == 1
    await index.delete(["a"], namespace=NS)
    reopened = open_text_index(tmp_path, tmp_path / "rag.db")  # not imported a second time
    assert await reopened.search("keyword", namespace=NS, k=3) == []


class _CountingCommits:
    """Wraps the tantivy writers an index opens, counting their commits."""

    def __init__(self, index: TantivyTextIndex) -> None:
        self.commits = 0
        opened = index._writer

        def writer() -> object:
            inner = opened()
            counter = self

            class Counted:
                def __getattr__(self, name: str) -> object:
                    return getattr(inner, name)

                def commit(self) -> object:
                    counter.commits += 1
                    return inner.commit()

            return Counted()

        index._writer = writer  # type: ignore[method-assign]


async def test_tantivy_writes_arriving_during_a_commit_share_the_next_one(tmp_path: Path) -> None:
    """A commit syncs the disk; documents written at once by concurrent ingestions should not
    each pay for one. Every write still returns only once it is searchable."""
    index = TantivyTextIndex(tmp_path / "t")
    counted = _CountingCommits(index)
    writes = 12
    await asyncio.gather(
        *(index.upsert([record(f"w{i}", f"grouped topic {i}")]) for i in range(writes))
    )
    assert len(await index.search("grouped topic", namespace=NS, k=50)) == writes
    assert 1 <= counted.commits < writes


async def test_tantivy_a_failing_write_in_a_group_fails_alone(tmp_path: Path) -> None:
    """The group is rolled back and retried one write per commit: the failing write raises,
    the others land, nothing of the failing one is searchable."""
    index = TantivyTextIndex(tmp_path / "t")
    good = [record(f"g{i}", "innocent words") for i in range(3)]
    bad = TextRecord("bad", NS, "poisoned words", {"not json": object()})
    index._lock.acquire()  # a commit in progress: the writes below queue up behind it
    try:
        tasks = [asyncio.ensure_future(index.upsert([r])) for r in good]
        tasks.append(asyncio.ensure_future(index.upsert([bad])))
        for _ in range(500):
            if len(index._queue) == len(tasks):
                break
            await asyncio.sleep(0.01)
    finally:
        index._lock.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[:3] == [None, None, None]
    assert isinstance(results[3], TypeError)
    assert sorted(h.id for h in await index.search("words", namespace=NS, k=10)) == [
        "g0",
        "g1",
        "g2",
    ]
    assert await index.search("poisoned", namespace=NS, k=10) == []
