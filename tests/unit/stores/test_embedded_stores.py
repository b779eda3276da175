"""Embedded-only behaviour: expired rows swept from SQLite, the exact cache's in-memory keys,
HNSW promotion and snapshots."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lockgate.cache.ports import CacheEntry
from lockgate.limits.ports import Increment
from lockgate.stores.embedded.counters import SqliteCounterStore
from lockgate.stores.embedded.exact_cache import SqliteExactCache
from lockgate.stores.embedded.vectors import EmbeddedVectorIndex, HnswOptions
from lockgate.stores.embedded.vectors_partition import HnswPartition
from lockgate.stores.ports import VectorRecord

pytestmark = pytest.mark.asyncio(loop_scope="session")

DIM = 32
NOW = 1_800_000_000.0


class Clock:
    now = NOW

    def __call__(self) -> float:
        return self.now


def vectors(n: int, seed: int = 0) -> np.ndarray[Any, np.dtype[np.float32]]:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def records(data: np.ndarray[Any, Any], namespace: str = "t1/cache") -> list[VectorRecord]:
    return [VectorRecord(str(i), namespace, v, {"i": i}) for i, v in enumerate(data)]


async def test_writes_sweep_expired_rows_out_of_the_file(tmp_path: Path) -> None:
    clock = Clock()
    cache = SqliteExactCache(tmp_path / "c.db", sweep_every=60, clock=clock)
    for i in range(5):
        await cache.put(CacheEntry(f"k{i}", "t1", "a", b"v", expires_at=NOW + 10))
    clock.now = NOW + 30
    await cache.put(CacheEntry("fresh", "t1", "a", b"v", expires_at=NOW + 300))
    assert cache.count() == 6  # not yet: the last sweep was under a minute ago

    clock.now = NOW + 61
    await cache.put(CacheEntry("fresh2", "t1", "a", b"v", expires_at=NOW + 300))

    assert cache.count() == 2
    cache.close()


async def test_exact_cache_entries_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    first = SqliteExactCache(tmp_path / "c.db", clock=clock)
    await first.put(CacheEntry("k", "t1", "a", b"answer", expires_at=NOW + 60))
    first.close()

    again = SqliteExactCache(tmp_path / "c.db", clock=clock)
    got = await again.get("k")
    again.close()
    assert got is not None and got.value == b"answer"


async def test_misses_are_answered_from_memory_and_hits_off_the_loop(tmp_path: Path) -> None:
    """The keys stored are known in memory: a miss never reads SQLite; a hit reads it in the
    store pool; purged and swept keys are misses again."""
    clock = Clock()
    cache = SqliteExactCache(tmp_path / "c.db", sweep_every=0, clock=clock)
    reads: list[str] = []
    real = cache._get

    def spy(key: str) -> CacheEntry | None:
        reads.append(threading.current_thread().name)
        return real(key)

    cache._get = spy  # type: ignore[method-assign]
    await cache.put(CacheEntry("hit", "t1", "a", b"v", expires_at=NOW + 60))
    await cache.put(CacheEntry("old", "t1", "b", b"v", expires_at=NOW + 5))
    assert await cache.get("never-stored") is None
    assert reads == []
    assert (await cache.get("hit")) is not None
    assert len(reads) == 1 and reads[0].startswith("lockgate-store")
    assert await cache.purge("t1", "a") == 1
    clock.now = NOW + 10
    await cache.put(CacheEntry("new", "t1", "c", b"v", expires_at=NOW + 60))  # sweeps "old"
    assert await cache.get("hit") is None and await cache.get("old") is None
    assert len(reads) == 1
    cache.close()


async def test_a_growing_namespace_moves_to_hnsw_and_still_finds_exact_matches(
    tmp_path: Path,
) -> None:
    index = EmbeddedVectorIndex(
        tmp_path / "v.db", dimensions=DIM, options=HnswOptions(exact_max=50)
    )
    data = vectors(200)
    await index.upsert(records(data[:40]))
    await index.upsert(records(data[:40], namespace="t2/cache"))
    assert not isinstance(index._spaces["t1/cache"].index, HnswPartition)

    await index.upsert(records(data)[40:])

    assert isinstance(index._spaces["t1/cache"].index, HnswPartition)
    for i in (0, 45, 199):
        (hit,) = await index.search(data[i], namespace="t1/cache", k=1)
        assert (hit.id, hit.payload) == (str(i), {"i": i})
        assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert index.count("t2/cache") == 40
    await index.aclose()


async def test_restart_reloads_the_hnsw_snapshot_instead_of_rebuilding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = vectors(120)
    first = EmbeddedVectorIndex(
        tmp_path / "v.db", dimensions=DIM, options=HnswOptions(exact_max=50)
    )
    await first.upsert(records(data))
    await first.aclose()
    loads: list[Path] = []
    original = HnswPartition.load
    monkeypatch.setattr(
        HnswPartition, "load", lambda self, p: (loads.append(p), original(self, p))[1]
    )

    again = EmbeddedVectorIndex(
        tmp_path / "v.db", dimensions=DIM, options=HnswOptions(exact_max=50)
    )

    assert len(loads) == 1
    (hit,) = await again.search(data[77], namespace="t1/cache", k=1)
    assert hit.id == "77"
    await again.aclose()


async def test_a_snapshot_older_than_the_data_is_not_trusted(tmp_path: Path) -> None:
    data = vectors(130)
    writer = EmbeddedVectorIndex(
        tmp_path / "v.db", dimensions=DIM, options=HnswOptions(exact_max=50)
    )
    await writer.upsert(records(data[:100]))
    writer.save()
    await writer.upsert(records(data)[100:])  # written after the snapshot, which is now stale
    await writer.delete(["3"], namespace="t1/cache")

    reader = EmbeddedVectorIndex(
        tmp_path / "v.db", dimensions=DIM, options=HnswOptions(exact_max=50)
    )

    assert reader.count("t1/cache") == 129
    (hit,) = await reader.search(data[120], namespace="t1/cache", k=1)
    assert hit.id == "120"
    assert all(h.id != "3" for h in await reader.search(data[3], namespace="t1/cache", k=5))
    reader._db.close()
    await writer.aclose()


async def test_a_file_for_another_dimension_is_refused(tmp_path: Path) -> None:
    EmbeddedVectorIndex(tmp_path / "v.db", dimensions=DIM).close()

    with pytest.raises(ValueError, match="32-d vectors, not 384-d"):
        EmbeddedVectorIndex(tmp_path / "v.db", dimensions=384)


async def test_concurrent_writes_and_searches_stay_consistent(tmp_path: Path) -> None:
    index = EmbeddedVectorIndex(
        tmp_path / "v.db", dimensions=DIM, options=HnswOptions(exact_max=64)
    )
    data = vectors(300)

    async def search_all() -> None:
        for i in range(0, 300, 7):
            hits = await index.search(data[i], namespace="t1/cache", k=3)
            assert all(h.payload == {"i": int(h.id)} for h in hits)
            await asyncio.sleep(0)

    batches = [index.upsert(records(data)[lo : lo + 30]) for lo in range(0, 300, 30)]
    await asyncio.gather(*batches, search_all(), search_all())

    assert index.count("t1/cache") == 300
    for i in range(0, 300, 37):
        (hit,) = await index.search(data[i], namespace="t1/cache", k=1)
        assert hit.id == str(i)
    await index.aclose()


async def test_a_sweep_keeps_the_month_budget_counter(tmp_path: Path) -> None:
    clock = Clock()
    counters = SqliteCounterStore(tmp_path / "c.db", clock=clock)
    counters.acquire([Increment("rpm", 1, 5), Increment("budget", 9, 100, NOW + 86400)], NOW + 60)
    clock.now = NOW + 120
    assert counters.sweep() == 1
    assert counters.values(["rpm", "budget"]) == {"budget": 9}
    counters.close()
