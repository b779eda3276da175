"""The one place where blocking store calls leave the event loop.

The tenant, key, counter and usage ports are synchronous (SQLite and boto3 are), and a call to
them on the event loop stalls every request in the process for a disk write or a DynamoDB round
trip. Every such call from the async core goes through `offload`, which runs it in a bounded
pool of its own: a slow store cannot take the threads that other work (document parsing, the
embedder) needs, and how many store calls run at once has one limit, set here. Calls keep the
caller's context variables (request ids, traces).

What stays on the loop is only what is served from memory: fresh `TenantDirectory` entries,
callers authenticated in the last second, exact-cache misses (the SQLite cache keeps its keys in
memory) and the embedded vector index's searches. Even a SQLite primary-key read does not: on a
busy machine it was seen waiting over 100 ms on the disk.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

WORKERS = 16
"""Store calls in flight at once per process; they wait on I/O, not on the CPU."""

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="lockgate-store")
        return _pool


async def offload(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`call(*args, **kwargs)` in the store pool, awaited from the loop."""
    loop = asyncio.get_running_loop()
    work = functools.partial(contextvars.copy_context().run, call, *args, **kwargs)
    try:
        future = loop.run_in_executor(_executor(), work)
    except RuntimeError:
        # The interpreter is shutting down (a Lambda's atexit): no thread will take it.
        return work()
    return await future


class SharedReads(Generic[T]):
    """One store read per key at a time: when a busy record's cached copy runs out, every
    request in flight would otherwise queue its own read in the store pool, and all of them
    wait for the slowest. Later callers await the read already running; one caller giving up
    (a cancelled request) does not cancel it for the others.

    `refresh` starts the read without waiting for it: a cache that re-reads a busy record
    before its copy expires keeps every request off the store. Under load that matters more
    than it seems: the read's thread shares the interpreter with a saturated event loop and
    took 20-90 ms, and all requests in flight waited for it together (the p99 under load)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}

    async def read(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key) or self._start(key, load)
        return await asyncio.shield(running)

    def refresh(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> None:
        """Starts reading `key` in the background unless a read of it is running; a failure is
        logged (the cached copy serves until it expires, then a request reads it again)."""
        if key not in self._running:
            self._start(key, load).add_done_callback(_log_failure)

    def _start(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        running = asyncio.ensure_future(load())
        running.add_done_callback(lambda _: self._running.pop(key, None))
        self._running[key] = running
        return running


def _log_failure(read: asyncio.Future[Any]) -> None:
    if not read.cancelled() and (error := read.exception()) is not None:
        log.warning("background store read failed: %s", type(error).__name__)
