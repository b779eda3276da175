"""Test doubles for the cache's ports: an exact in-memory vector index and a dict-backed exact
cache. The embedder is the real bundled MiniLM, loaded once per test session."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from lockgate.cache.ports import CacheEntry
from lockgate.embeddings.base import Vectors
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.stores.ports import VectorHit, VectorRecord


@cache
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


class MemoryIndex:
    """Brute-force cosine search, filtered by namespace like the real adapters."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], VectorRecord] = {}
        self.searches: list[str] = []

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        for record in records:
            vector = np.asarray(record.vector, dtype=np.float32)
            unit = vector / np.linalg.norm(vector)
            self.records[(record.namespace, record.id)] = VectorRecord(
                record.id, record.namespace, unit, dict(record.payload)
            )

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]:
        self.searches.append(namespace)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        hits = [
            VectorHit(r.id, float(r.vector @ query), dict(r.payload))
            for (ns, _), r in self.records.items()
            if ns == namespace
        ]
        return sorted(hits, key=lambda h: -h.score)[:k]

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        for entry_id in ids:
            self.records.pop((namespace, entry_id), None)

    async def delete_namespace(self, namespace_prefix: str) -> int:
        doomed = [key for key in self.records if key[0].startswith(namespace_prefix)]
        for key in doomed:
            del self.records[key]
        return len(doomed)


class DictExactCache:
    """The ExactCache port over a dict; it does NOT drop expired entries itself, like
    DynamoDB before its lazy TTL sweep, so the service's own expiry check is exercised."""

    def __init__(self) -> None:
        self.entries: dict[str, CacheEntry] = {}
        self.fail = False

    async def get(self, key: str) -> CacheEntry | None:
        if self.fail:
            raise ConnectionError("backend down")
        return self.entries.get(key)

    async def put(self, entry: CacheEntry) -> None:
        if self.fail:
            raise ConnectionError("backend down")
        self.entries[entry.key] = entry

    async def purge(self, tenant: str, alias: str | None) -> int:
        doomed = [
            k
            for k, e in self.entries.items()
            if e.tenant == tenant and (alias is None or e.alias == alias)
        ]
        for key in doomed:
            del self.entries[key]
        return len(doomed)
