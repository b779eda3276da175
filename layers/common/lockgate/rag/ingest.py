"""The ingestion service: documents in, both indexes kept consistent, a status row per source.

How a half index is avoided: each version of a document writes its chunks under ids that carry
the version's fingerprint (`<doc>:<fingerprint>:<n>`), so a new version never overwrites the one
being served. The new chunks go into both indexes first; only then does the document row flip its
serving fingerprint and the old version's chunks get deleted. A failure while writing deletes what
the attempt wrote (ids are known: the count is recorded before the first write) and leaves the
row `failed` with the error and the still-pending fingerprint, so a retry (or the next ingest)
finishes the cleanup, and the previous version keeps answering meanwhile. Between the writes and
the flip, a query may see both complete versions for a moment, never a partial one.

Idempotency: the fingerprint hashes the bytes together with the chunker's settings and the
embedder's name, so the same file ingested again is a no-op, while a new chunking or embedding
model re-indexes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from lockgate.embeddings.base import Embedder
from lockgate.policy import IngestionPolicy
from lockgate.rag.chunking import Chunker
from lockgate.rag.errors import DocumentError, DocumentTooLarge, IngestQuotaExceeded
from lockgate.rag.model import (
    Chunk,
    CollectionInfo,
    DocumentRecord,
    IngestResult,
    check_name,
    namespace,
)
from lockgate.rag.parsing import DocumentParser
from lockgate.rag.ports import DocumentStore, TextIndex, TextRecord
from lockgate.stores.ports import VectorIndex, VectorRecord

log = logging.getLogger("lockgate.rag.ingest")

Progress = Callable[[str, int, int], None]
"""Called as (source_uri, chunks_done, chunks_total) while a document is indexed."""

EMPTY_VERSION = hashlib.sha256(b"").hexdigest()[:16]


def doc_id_for(source_uri: str) -> str:
    """A stable id per source: the same path or S3 key always names the same document."""
    return hashlib.sha256(source_uri.encode()).hexdigest()[:20]


def chunk_id(doc_id: str, fingerprint: str, index: int) -> str:
    return f"{doc_id}:{fingerprint[:12]}:{index}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DocumentError):
        return str(exc)
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class IngestionService:
    def __init__(
        self,
        documents: DocumentStore,
        text_index: TextIndex,
        vectors: VectorIndex,
        embedder: Embedder,
        *,
        chunker: Chunker | None = None,
        parser: DocumentParser | None = None,
        batch_size: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.documents = documents
        self.text_index = text_index
        self.vectors = vectors
        self.embedder = embedder
        self.chunker = chunker or Chunker()
        self.parser = parser or DocumentParser()
        self._batch = batch_size
        self._clock = clock
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._version_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._quota = _UploadQuota(self.parser.limits, clock)
        self.on_change: list[Callable[[str], None]] = []
        """Told the namespace whenever what a collection serves changes."""

    def fingerprint(self, content: bytes) -> str:
        digest = hashlib.sha256(content)
        digest.update(f"\0{self.chunker.signature}\0{self.embedder.name}".encode())
        return digest.hexdigest()

    async def ingest(
        self,
        tenant: str,
        collection: str,
        source_uri: str,
        content: bytes,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        progress: Progress | None = None,
        upload: bool = False,
    ) -> IngestResult:
        """Indexes one source; never raises for a bad document or a failing backend: the result
        (and the status row) says `failed`, with `error`, and `retryable` when trying again may
        help.

        An `upload` (a tenant's, through the API) counts against the tenant's hourly ingestion
        quota (`IngestQuotaExceeded` when over it), and a document that cannot be ingested
        raises its `DocumentError` once its status row says so, for the caller to see."""
        ns = namespace(tenant, collection)
        doc_id = doc_id_for(source_uri)
        started = time.perf_counter()
        if upload:
            self._quota.admit(tenant, len(content))
        async with self._lock(tenant, collection, doc_id):
            fingerprint = self.fingerprint(content)
            existing = await self.documents.get(tenant, collection, doc_id)
            if (
                existing is not None
                and existing.status == "ready"
                and existing.content_hash == fingerprint
                and existing.pending_hash is None
            ):
                return IngestResult(
                    doc_id,
                    source_uri,
                    "unchanged",
                    chunks=existing.chunk_count,
                    collection_version=await self.collection_version(tenant, collection),
                    seconds=time.perf_counter() - started,
                )
            record = existing or DocumentRecord(tenant, collection, doc_id, source_uri)
            if record.pending_hash and record.pending_hash != record.content_hash:
                await self._drop(ns, doc_id, record.pending_hash, record.pending_count)
            record.pending_hash, record.pending_count = fingerprint, 0
            record.status, record.error = "indexing", None
            record.attempts += 1
            record.size_bytes = len(content)
            record.updated_at = self._clock()
            await self.documents.put(record)
            try:
                name = filename or source_uri
                document = await self.parser.parse(
                    content, filename=name, content_type=content_type
                )
                # Every word is at least one token, so this many chunks at the very least: a
                # document far over the limit is refused before it is chunked.
                words = sum(len(block.text.split()) for block in document.blocks)
                _check_chunks(
                    name, words // self.chunker.max_tokens, self.parser.limits, "at least "
                )
                chunks = await asyncio.to_thread(self.chunker.chunk, document)
                _check_chunks(name, len(chunks), self.parser.limits)
                record.title = document.title
                record.pending_count = len(chunks)
                await self.documents.put(record)
                await self._write(
                    ns, doc_id, fingerprint, source_uri, chunks, progress, self._beat(record)
                )
            except Exception as exc:
                failed = await self._fail(record, ns, exc, started)
                if upload and isinstance(exc, DocumentError):
                    raise
                return failed
            replaced = record.content_hash
            old = (record.content_hash, record.chunk_count)
            record.content_hash, record.chunk_count = fingerprint, len(chunks)
            record.pending_hash, record.pending_count = None, 0
            record.status, record.error = "ready", None
            record.updated_at = self._clock()
            await self.documents.put(record)
            self._announce(tenant, collection)
            if old[0] and old[0] != fingerprint:
                try:
                    await self._drop(ns, doc_id, old[0], old[1])
                except Exception as exc:
                    # The new version serves; the old chunks are recorded for the next attempt.
                    record.pending_hash, record.pending_count = old
                    record.error = f"removing the previous version: {_describe(exc)}"
                    await self.documents.put(record)
            version = await self._refresh_version(tenant, collection)
            return IngestResult(
                doc_id,
                source_uri,
                "replaced" if replaced else "indexed",
                chunks=len(chunks),
                collection_version=version,
                seconds=time.perf_counter() - started,
            )

    async def delete(self, tenant: str, collection: str, source_uri: str) -> IngestResult:
        return await self.delete_document(tenant, collection, doc_id_for(source_uri))

    async def delete_document(self, tenant: str, collection: str, doc_id: str) -> IngestResult:
        ns = namespace(tenant, collection)
        started = time.perf_counter()
        async with self._lock(tenant, collection, doc_id):
            record = await self.documents.get(tenant, collection, doc_id)
            if record is None:
                return IngestResult(doc_id, "", "missing")
            record.status, record.error = "deleting", None
            record.updated_at = self._clock()
            await self.documents.put(record)
            try:
                if record.content_hash:
                    await self._drop(ns, doc_id, record.content_hash, record.chunk_count)
                if record.pending_hash:
                    await self._drop(ns, doc_id, record.pending_hash, record.pending_count)
                await self.documents.remove(tenant, collection, doc_id)
            except Exception as exc:
                record.error = _describe(exc)
                await self.documents.put(record)
                return IngestResult(
                    doc_id, record.source_uri, "failed", error=record.error, retryable=True
                )
            version = await self._refresh_version(tenant, collection)
            return IngestResult(
                doc_id,
                record.source_uri,
                "deleted",
                collection_version=version,
                seconds=time.perf_counter() - started,
            )

    async def delete_collection(self, tenant: str, collection: str) -> int:
        """Deletes every document of the collection; returns how many."""
        deleted = 0
        for record in await self.documents.list_documents(tenant, collection):
            result = await self.delete_document(tenant, collection, record.doc_id)
            if result.outcome == "failed":
                raise RuntimeError(f"deleting {record.source_uri}: {result.error}")
            deleted += 1
        self._announce(tenant, collection)
        await self.documents.set_version(tenant, collection, None)
        self._announce(tenant, collection)
        return deleted

    async def list_collections(self, tenant: str) -> list[CollectionInfo]:
        check_name("tenant", tenant)
        infos: list[CollectionInfo] = []
        for collection in sorted(await self.documents.list_collections(tenant)):
            records = await self.documents.list_documents(tenant, collection)
            infos.append(
                CollectionInfo(
                    tenant=tenant,
                    collection=collection,
                    documents=len(records),
                    chunks=sum(r.chunk_count for r in records),
                    failed=sum(1 for r in records if r.error),
                    version=await self.collection_version(tenant, collection),
                )
            )
        return infos

    async def list_documents(self, tenant: str, collection: str) -> list[DocumentRecord]:
        namespace(tenant, collection)
        records = await self.documents.list_documents(tenant, collection)
        return sorted(records, key=lambda r: r.source_uri)

    async def status(self, tenant: str, collection: str, source_uri: str) -> DocumentRecord | None:
        namespace(tenant, collection)
        return await self.documents.get(tenant, collection, doc_id_for(source_uri))

    async def failures(self, tenant: str, collection: str) -> list[DocumentRecord]:
        return [r for r in await self.list_documents(tenant, collection) if r.error]

    async def collection_version(self, tenant: str, collection: str) -> str:
        """Changes whenever what the collection serves changes; equal content, equal version.
        Cache keys include it, so a cached answer never outlives the documents it came from."""
        namespace(tenant, collection)
        stored = await self.documents.get_version(tenant, collection)
        return stored or EMPTY_VERSION

    async def _refresh_version(self, tenant: str, collection: str) -> str:
        """One writer per collection at a time: two documents finishing together could otherwise
        each read the rows before the other's flip and the later write leave a stale version."""
        lock = self._version_locks.setdefault((tenant, collection), asyncio.Lock())
        async with lock:
            self._announce(tenant, collection)
            try:
                return await self._write_version(tenant, collection)
            finally:
                self._announce(tenant, collection)

    def _announce(self, tenant: str, collection: str) -> None:
        for listener in self.on_change:
            listener(namespace(tenant, collection))

    async def _write_version(self, tenant: str, collection: str) -> str:
        records = await self.documents.list_documents(tenant, collection)
        serving = sorted((r.doc_id, r.content_hash) for r in records if r.content_hash)
        if not serving:
            await self.documents.set_version(tenant, collection, None)
            return EMPTY_VERSION
        digest = hashlib.sha256()
        for doc_id, fingerprint in serving:
            digest.update(f"{doc_id}={fingerprint};".encode())
        version = digest.hexdigest()[:16]
        await self.documents.set_version(tenant, collection, version)
        return version

    async def _write(
        self,
        ns: str,
        doc_id: str,
        fingerprint: str,
        source_uri: str,
        chunks: Sequence[Chunk],
        progress: Progress | None,
        beat: Callable[[], Awaitable[None]],
    ) -> None:
        if progress:
            progress(source_uri, 0, len(chunks))
        for start in range(0, len(chunks), self._batch):
            batch = chunks[start : start + self._batch]
            texts = [c.indexed_text() for c in batch]
            vectors = await self.embedder.embed(texts)
            ids = [chunk_id(doc_id, fingerprint, c.index) for c in batch]
            payloads = [self._payload(doc_id, fingerprint, source_uri, c) for c in batch]
            await self.vectors.upsert(
                [
                    VectorRecord(id=i, namespace=ns, vector=v, payload=p)
                    for i, v, p in zip(ids, vectors, payloads, strict=True)
                ]
            )
            await self.text_index.upsert(
                [
                    TextRecord(id=i, namespace=ns, text=t, payload=p)
                    for i, t, p in zip(ids, texts, payloads, strict=True)
                ]
            )
            if start + self._batch < len(chunks):
                await beat()  # the last batch needs none: the row flips to `ready` next
            if progress:
                progress(source_uri, start + len(batch), len(chunks))

    def _beat(self, record: DocumentRecord) -> Callable[[], Awaitable[None]]:
        """A document being written says so every batch: a row left `indexing` and quiet for a
        while was abandoned (its writer crashed), not slow (see `repair`)."""

        async def beat() -> None:
            record.updated_at = self._clock()
            await self.documents.put(record)

        return beat

    async def repair(self, *, stale_after_s: float = 120.0) -> list[IngestResult]:
        """Finishes what a crash left half done, in every tenant's collections: a document left
        `deleting` is deleted; one left `indexing` has the chunks of its unfinished version
        removed and is marked failed (its previous version, if any, keeps serving; ingesting
        the file again — a watched folder does at start — indexes it). Rows touched within
        `stale_after_s` may belong to a live writer and are left alone."""
        repaired: list[IngestResult] = []
        for stuck in await self.documents.list_unfinished():
            if self._clock() - stuck.updated_at < stale_after_s:
                continue
            if stuck.status == "deleting":
                repaired.append(
                    await self.delete_document(stuck.tenant, stuck.collection, stuck.doc_id)
                )
                continue
            async with self._lock(stuck.tenant, stuck.collection, stuck.doc_id):
                record = await self.documents.get(stuck.tenant, stuck.collection, stuck.doc_id)
                if record is None or record.status != "indexing":
                    continue
                ns = namespace(record.tenant, record.collection)
                interrupted = Interrupted(f"{record.source_uri}: indexing was interrupted")
                repaired.append(await self._fail(record, ns, interrupted, time.perf_counter()))
        return repaired

    @staticmethod
    def _payload(doc_id: str, fingerprint: str, source_uri: str, chunk: Chunk) -> dict[str, object]:
        payload: dict[str, object] = {
            "doc_id": doc_id,
            "version": fingerprint[:12],
            "chunk": chunk.index,
            "title": chunk.title,
            "uri": chunk.url or source_uri,
            "section": chunk.section,
            "text": chunk.text,
        }
        if chunk.page is not None:
            payload["page"] = chunk.page
        if chunk.entry is not None:
            payload["entry"] = chunk.entry
        return payload

    async def _drop(self, ns: str, doc_id: str, fingerprint: str, count: int) -> None:
        if count <= 0:
            return
        ids = [chunk_id(doc_id, fingerprint, i) for i in range(count)]
        await self.vectors.delete(ids, namespace=ns)
        await self.text_index.delete(ids, namespace=ns)

    async def _fail(
        self, record: DocumentRecord, ns: str, exc: Exception, started: float
    ) -> IngestResult:
        retryable = not isinstance(exc, DocumentError)
        error = _describe(exc)
        if retryable:
            log.warning("ingest failed for %s: %s", record.source_uri, error)
        if record.pending_hash:
            try:
                await self._drop(ns, record.doc_id, record.pending_hash, record.pending_count)
                record.pending_hash, record.pending_count = None, 0
            except Exception as cleanup:
                error = f"{error}; cleanup pending: {_describe(cleanup)}"
        record.status, record.error = "failed", error
        record.updated_at = self._clock()
        await self.documents.put(record)
        return IngestResult(
            record.doc_id,
            record.source_uri,
            "failed",
            chunks=0,
            error=error,
            retryable=retryable,
            seconds=time.perf_counter() - started,
        )

    def _lock(self, tenant: str, collection: str, doc_id: str) -> asyncio.Lock:
        return self._locks.setdefault((tenant, collection, doc_id), asyncio.Lock())


def _check_chunks(name: str, count: int, limits: IngestionPolicy, qualifier: str = "") -> None:
    if count > limits.max_chunks:
        raise DocumentTooLarge(
            f"{name.rsplit('/', 1)[-1]}: {qualifier}{count} chunks, over the limit of"
            f" {limits.max_chunks} (max_chunks)",
            limit="max_chunks",
        )


class Interrupted(Exception):
    """Indexing stopped half way (the process died); trying again will do."""


class _UploadQuota:
    """Per tenant, the uploads and bytes of the last hour, in this process: enough to keep one
    tenant from monopolising the parser and the embedder; not a billing meter."""

    WINDOW_S = 3600.0

    def __init__(self, limits: IngestionPolicy, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        self._seen: dict[str, deque[tuple[float, int]]] = {}

    def admit(self, tenant: str, size: int) -> None:
        now = self._clock()
        seen = self._seen.setdefault(tenant, deque())
        while seen and seen[0][0] <= now - self.WINDOW_S:
            seen.popleft()
        used = sum(n for _, n in seen)
        over_count = len(seen) + 1 > self._limits.uploads_per_hour
        over_bytes = used + size > self._limits.upload_mb_per_hour * 1024 * 1024
        if over_count or over_bytes:
            wait = seen[0][0] + self.WINDOW_S - now if seen else self.WINDOW_S
            what = (
                f"{self._limits.uploads_per_hour} documents"
                if over_count
                else f"{self._limits.upload_mb_per_hour:g} MB"
            )
            raise IngestQuotaExceeded(
                f"This tenant has uploaded {what} in the last hour, its ingestion quota"
                f" ({'uploads_per_hour' if over_count else 'upload_mb_per_hour'}).",
                retry_after=max(wait, 1.0),
            )
        seen.append((now, size))
