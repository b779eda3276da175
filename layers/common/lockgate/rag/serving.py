"""What retrieval may serve: each document's committed version, nothing else.

Ingestion writes a new version's chunks first and flips the document row's `content_hash` only
once all of them are in both indexes; until then — and forever, if the writer was killed — the
new chunks are in the indexes but not committed. The indexes are wrapped here so that every
search keeps only chunks whose `(doc_id, version)` is what the document row serves: a partial
document is never a candidate, on any backend, whatever the index supports.

The committed versions of a collection are read from the document store at most once a second
(`ttl_s`) and at once after this process changes the collection. A stale view can only hide a
version committed a moment ago or keep serving the complete previous one; it can never admit an
uncommitted chunk.

The same refresh notices a collection changed by another process (`lockgate ingest` while the
server runs): the collection's version moved without this process having moved it. The text
index reads SQLite and sees the new rows by itself; an in-memory vector index is reopened from
its file (`ReopeningVectors`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockgate.embeddings.base import Vectors
from lockgate.rag.ports import DocumentStore, TextHit, TextIndex, TextRecord
from lockgate.stores.ports import VectorHit, VectorIndex, VectorRecord

MAX_OVERFETCH = 2000
"""At most this many extra candidates are asked for to make up for hidden (uncommitted) ones."""


@dataclass(slots=True)
class _Committed:
    versions: dict[str, str]
    hidden: int
    """Chunks written but not committed: how many more candidates a search needs."""
    version: str | None
    read_at: float
    own: bool = False
    """This process changed the collection since it was read."""

    def serves(self, id_: str, payload: dict[str, Any]) -> bool:
        doc_id = payload.get("doc_id")
        version = payload.get("version")
        if doc_id is None or version is None:
            doc_id, version, _ = [*id_.split(":"), "", "", ""][:3]
        return self.versions.get(str(doc_id)) == str(version)


@dataclass
class ServingVersions:
    documents: DocumentStore
    ttl_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    on_foreign_change: list[Callable[[str], Awaitable[None]]] = field(default_factory=list)
    """Called with the namespace when another process changed a collection."""
    _cache: dict[str, _Committed] = field(default_factory=dict)

    async def committed(self, namespace: str) -> _Committed:
        cached = self._cache.get(namespace)
        if cached is not None and self.clock() - cached.read_at < self.ttl_s:
            return cached
        _, tenant, collection = namespace.split("/", 2)
        version = await self.documents.get_version(tenant, collection)
        if cached is not None and cached.version == version:
            cached.read_at = self.clock()
            return cached
        if cached is not None and not cached.own:
            # Searches meanwhile keep the old (complete) view rather than reopen again.
            cached.version, cached.read_at = version, self.clock()
            for notify in self.on_foreign_change:
                await notify(namespace)
        records = await self.documents.list_documents(tenant, collection)
        fresh = _Committed(
            versions={r.doc_id: r.content_hash[:12] for r in records if r.content_hash},
            hidden=min(MAX_OVERFETCH, sum(r.pending_count for r in records if r.pending_hash)),
            version=version,
            read_at=self.clock(),
        )
        self._cache[namespace] = fresh
        return fresh

    def changed(self, namespace: str) -> None:
        """This process changed the collection: read it afresh on the next search (and do not
        take the change for another process's)."""
        cached = self._cache.get(namespace)
        if cached is not None:
            cached.read_at, cached.own = float("-inf"), True


class ServedText:
    """A `TextIndex` whose searches return committed chunks only."""

    def __init__(self, inner: TextIndex, serving: ServingVersions) -> None:
        self.inner = inner
        self._serving = serving

    async def upsert(self, records: Sequence[TextRecord]) -> None:
        await self.inner.upsert(records)

    async def search(self, query: str, *, namespace: str, k: int) -> list[TextHit]:
        committed = await self._serving.committed(namespace)
        hits = await self.inner.search(query, namespace=namespace, k=k + committed.hidden)
        return [h for h in hits if committed.serves(h.id, h.payload)][:k]

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        await self.inner.delete(ids, namespace=namespace)

    async def delete_namespace(self, namespace_prefix: str) -> int:
        return await self.inner.delete_namespace(namespace_prefix)


class ServedVectors:
    """A `VectorIndex` whose searches return committed chunks only."""

    def __init__(self, inner: VectorIndex, serving: ServingVersions) -> None:
        self.inner = inner
        self._serving = serving

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        await self.inner.upsert(records)

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]:
        committed = await self._serving.committed(namespace)
        hits = await self.inner.search(vector, namespace=namespace, k=k + committed.hidden)
        return [h for h in hits if committed.serves(h.id, h.payload)][:k]

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        await self.inner.delete(ids, namespace=namespace)

    async def delete_namespace(self, namespace_prefix: str) -> int:
        return await self.inner.delete_namespace(namespace_prefix)


class ReopeningVectors:
    """An in-memory vector index over a file that other processes also write: reopened from
    the file when one of them changed it. Writes and the swap are serialised, so no write of
    this process is lost to a reopen."""

    def __init__(self, open_index: Callable[[], Any]) -> None:
        self._open = open_index
        self.current: Any = open_index()
        self._lock = asyncio.Lock()

    async def reopen(self, namespace: str = "") -> None:
        async with self._lock:
            # The old instance is dropped, not closed: closing writes snapshots of its (stale)
            # memory under the file's current versions.
            self.current = await asyncio.to_thread(self._open)

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        async with self._lock:
            await self.current.upsert(records)

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]:
        hits: list[VectorHit] = await self.current.search(vector, namespace=namespace, k=k)
        return hits

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None:
        async with self._lock:
            await self.current.delete(ids, namespace=namespace)

    async def delete_namespace(self, namespace_prefix: str) -> int:
        async with self._lock:
            removed: int = await self.current.delete_namespace(namespace_prefix)
            return removed

    async def aclose(self) -> None:
        async with self._lock:
            await self.current.aclose()
