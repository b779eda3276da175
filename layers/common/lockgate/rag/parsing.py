"""Parsing untrusted documents away from the server: in a worker process, bounded in time and
memory, so that no upload can stall the event loop or swell the server.

Size limits (`IngestionPolicy`) are checked inside the loaders before the work they bound; the
worker adds what a check cannot see in advance: an address-space cap (a parser that inflates
past it fails with `MemoryError` in the worker, not in the server) and a deadline (the worker is
killed and replaced). One worker process is started on first use from a `forkserver`, so it
inherits none of the server's threads or memory.

Where processes cannot be started (AWS Lambda has no `/dev/shm` for their semaphores), or when
asked (`isolated=False`), parsing runs in a thread with the same size limits: the Lambda is the
isolation there, one event at a time under its own memory limit.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor

from lockgate.policy import IngestionPolicy
from lockgate.rag.errors import CorruptDocument, DocumentTooLarge
from lockgate.rag.loaders import load
from lockgate.rag.model import LoadedDocument

log = logging.getLogger("lockgate.rag.parsing")

_MB = 1024 * 1024


def _start_worker(megabytes: int, owner: int) -> None:
    """Runs first in the worker: its whole address space, libraries included, stays under the
    cap (the loaded interpreter takes about 100 MB of it), and it exits when the process it
    parses for is gone — killed with SIGKILL, that process cannot stop it, and a pool worker
    whose owner died would otherwise wait for work forever (keeping the forkserver alive). A
    timer signal checks, rather than a thread, whose malloc arena would eat into the cap."""
    limit = megabytes * _MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def check_owner(signum: int, frame: object) -> None:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)

    signal.signal(signal.SIGALRM, check_owner)
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)


def _parse(
    content: bytes, filename: str, content_type: str | None, limits: IngestionPolicy
) -> LoadedDocument:
    try:
        return load(content, filename=filename, content_type=content_type, limits=limits)
    except MemoryError:
        raise _out_of_memory(filename, limits) from None
    except CorruptDocument:
        # A parser that cannot allocate may say anything (lxml: "unknown error"); a peak this
        # close to the cap says what it was.
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if peak_mb >= 0.8 * limits.parse_memory_mb:
            raise _out_of_memory(filename, limits) from None
        raise


def _out_of_memory(filename: str, limits: IngestionPolicy) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"{filename.rsplit('/', 1)[-1]}: parsing needs more than {limits.parse_memory_mb} MB"
        " (parse_memory_mb)",
        limit="parse_memory_mb",
    )


class DocumentParser:
    def __init__(self, limits: IngestionPolicy | None = None, *, isolated: bool = True) -> None:
        self.limits = limits or IngestionPolicy()
        self._isolated = isolated
        self._pool: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def parse(
        self, content: bytes, *, filename: str, content_type: str | None = None
    ) -> LoadedDocument:
        """The loaded document, or `DocumentError` (`DocumentTooLarge` naming the limit)."""
        # One parse at a time: the worker is the unit of isolation, and a deadline killing it
        # must not take another tenant's document with it.
        async with self._lock:
            # Starting the worker (and the forkserver, the first time) blocks: not on the loop.
            pool = await asyncio.to_thread(self._worker) if self._isolated else None
            if pool is None:
                return await asyncio.to_thread(_parse, content, filename, content_type, self.limits)
            submitted = await asyncio.to_thread(
                pool.submit, _parse, content, filename, content_type, self.limits
            )
            work = asyncio.wrap_future(submitted)
            try:
                return await asyncio.wait_for(work, self.limits.parse_timeout_s)
            except DocumentTooLarge as exc:
                if exc.limit == "parse_memory_mb":
                    self._replace(pool)  # a fresh worker: its memory and its peak
                raise
            except TimeoutError:
                self._replace(pool)
                raise DocumentTooLarge(
                    f"{filename.rsplit('/', 1)[-1]}: parsing took longer than"
                    f" {self.limits.parse_timeout_s:g} s (parse_timeout_s)",
                    limit="parse_timeout_s",
                ) from None
            except BrokenExecutor:
                # The worker died (the kernel's OOM killer, a parser crash) on this document.
                self._replace(pool)
                raise _out_of_memory(filename, self.limits) from None

    def _worker(self) -> ProcessPoolExecutor | None:
        if self._pool is None:
            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["lockgate.rag.parsing"])
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(self.limits.parse_memory_mb, os.getpid()),
                )
            except (OSError, NotImplementedError, ValueError) as exc:
                log.warning("documents are parsed in a thread: no worker process (%s)", exc)
                self._isolated = False
                return None
        return self._pool

    def _replace(self, pool: Executor) -> None:
        """Kills the worker (a stuck parser ignores everything else) and starts afresh."""
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self._pool is pool:
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._replace(self._pool)
