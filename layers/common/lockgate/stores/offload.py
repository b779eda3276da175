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
import threading
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

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
    (a cancelled request) does not cancel it for the others."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}

    async def read(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(load())
            running.add_done_callback(lambda _: self._running.pop(key, None))
            self._running[key] = running
        return await asyncio.shield(running)
