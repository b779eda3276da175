"""Files on disk into a collection: one-shot ingestion of paths, a folder sync, and a watched
folder that keeps a collection equal to a directory.

The watcher polls (`os.scandir` + mtime/size) rather than using inotify: it works the same on
every OS and on network and container-mounted folders where change notifications are not
delivered, and a scan of a few thousand files takes milliseconds, so a half-second interval
keeps "saved → answerable" about as short as the ingestion itself.

Files are ingested a few at a time (`PIPELINE_DEPTH`), in order: while one document's chunks
are embedded, the next is parsed and chunked and the previous one's indexes commit. Each of those
steps waits mostly on something other than the model (a worker process, a disk sync), so on a
small machine the embedding model is kept busy instead of idling between documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

from lockgate.rag.ingest import IngestionService, Progress
from lockgate.rag.loaders import SUPPORTED_EXTENSIONS
from lockgate.rag.model import IngestResult

log = logging.getLogger("lockgate.rag.folders")

Snapshot = dict[Path, tuple[int, int]]
_T = TypeVar("_T")
_R = TypeVar("_R")

PIPELINE_DEPTH = 3
"""Documents in flight at once. Two already overlap one document's writes with the next one's
embedding; a third lets parsing run ahead too. More only holds more files in memory: the model
runs one batch at a time."""


def source_uri(path: Path) -> str:
    return path.resolve().as_uri()


def supported_files(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, plus supported files found under directories (hidden ones
    skipped), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(
                    Path(root, f)
                    for f in sorted(files)
                    if not f.startswith(".") and Path(f).suffix.lower() in SUPPORTED_EXTENSIONS
                )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return found


async def ingest_paths(
    service: IngestionService,
    paths: Iterable[Path],
    *,
    tenant: str,
    collection: str,
    progress: Progress | None = None,
    on_result: Callable[[IngestResult], None] | None = None,
    depth: int = PIPELINE_DEPTH,
) -> list[IngestResult]:
    async def ingest(path: Path) -> IngestResult:
        return await service.ingest(
            tenant,
            collection,
            source_uri(path),
            await asyncio.to_thread(path.read_bytes),
            filename=path.name,
            progress=progress,
        )

    results: list[IngestResult] = []

    def each(path: Path, result: IngestResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    await pipelined(supported_files(paths), ingest, each, depth)
    return results


async def pipelined(
    items: Iterable[_T],
    work: Callable[[_T], Awaitable[_R]],
    each: Callable[[_T, _R], None],
    depth: int = PIPELINE_DEPTH,
) -> None:
    """`work` on every item, up to `depth` at once; `each` is told the results in the items'
    order. Whatever is still running when one fails or the caller is cancelled is cancelled."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    running: deque[tuple[_T, asyncio.Task[_R]]] = deque()
    try:
        for item in items:
            running.append((item, asyncio.ensure_future(work(item))))
            if len(running) >= depth:
                first, task = running.popleft()
                each(first, await task)
        while running:
            first, task = running.popleft()
            each(first, await task)
    finally:
        tasks = [task for _, task in running]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
            for task in tasks:
                if not task.cancelled():
                    task.exception()  # retrieved: the first failure is the one raised


def snapshot(folder: Path) -> Snapshot:
    state: Snapshot = {}
    for path in supported_files([folder]):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        state[path] = (stat.st_mtime_ns, stat.st_size)
    return state


async def sync_folder(
    service: IngestionService,
    folder: Path,
    *,
    tenant: str,
    collection: str,
    previous: Snapshot | None = None,
    on_result: Callable[[IngestResult], None] | None = None,
) -> Snapshot:
    """Makes the collection's documents from this folder equal to the folder's files.

    With `previous`, only files whose mtime or size changed are read; without it every file is
    read (unchanged ones cost a hash and a lookup, no embedding). Documents from this folder whose
    file is gone are deleted; documents from elsewhere in the collection are left alone."""
    current = await asyncio.to_thread(snapshot, folder)
    changed = [p for p, sig in current.items() if previous is None or previous.get(p) != sig]

    async def ingest(path: Path) -> IngestResult | None:
        try:
            content = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return await service.ingest(
            tenant, collection, source_uri(path), content, filename=path.name
        )

    def each(path: Path, result: IngestResult | None) -> None:
        if result is None:
            current.pop(path, None)
            return
        if result.outcome == "failed" and result.retryable:
            current.pop(path, None)  # not recorded as seen: the next scan retries it
        if on_result:
            on_result(result)

    await pipelined(changed, ingest, each)
    prefix, present = await asyncio.to_thread(_uris, folder, list(current))
    for record in await service.list_documents(tenant, collection):
        if record.source_uri.startswith(prefix) and record.source_uri not in present:
            result = await service.delete_document(tenant, collection, record.doc_id)
            if on_result:
                on_result(result)
    return current


async def watch_folder(
    service: IngestionService,
    folder: Path,
    *,
    tenant: str,
    collection: str,
    interval: float = 0.5,
    stop: asyncio.Event | None = None,
    on_result: Callable[[IngestResult], None] | None = None,
) -> None:
    """Keeps the collection in step with the folder until `stop` is set (or the task is
    cancelled). A scan that fails (a backend down) is logged and retried on the next tick."""
    if not await asyncio.to_thread(folder.is_dir):
        raise NotADirectoryError(f"{folder}: not a directory")
    stop = stop or asyncio.Event()
    state: Snapshot | None = None
    while not stop.is_set():
        try:
            state = await sync_folder(
                service,
                folder,
                tenant=tenant,
                collection=collection,
                previous=state,
                on_result=on_result,
            )
        except Exception:
            log.exception("watched folder %s: scan failed; retrying", folder)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def _uris(folder: Path, files: list[Path]) -> tuple[str, set[str]]:
    return folder.resolve().as_uri().rstrip("/") + "/", {source_uri(p) for p in files}
