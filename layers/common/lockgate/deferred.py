"""Work no caller waits for, done while the gateway waits on an upstream anyway.

What runs once an answer is sent (its access line) runs just as a caller making one request at a
time sends its next one, and delays that request by as much. A call upstream, by contrast, leaves
the serving loop idle for a round trip at least. Work put off here runs right after a request
has gone upstream (the connection pool calls `run_pending`), or `MAX_DELAY_S` after it was put
off when no upstream call comes first, and at shutdown.

Only work whose loss with a killed process is acceptable belongs here: an access line may be,
a usage record may not (the ledger journals it at once).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

MAX_DELAY_S = 0.05

log = logging.getLogger("lockgate")


class _Pending(threading.local):
    """Per thread, so per serving loop: each runs its own work on its own loop."""

    def __init__(self) -> None:
        self.work: list[Callable[[], None]] = []
        self.timer: asyncio.TimerHandle | None = None


_pending = _Pending()


def defer(work: Callable[[], None]) -> None:
    """Runs `work` soon, off the path of the requests being served; at once outside a loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _run(work)
        return
    _pending.work.append(work)
    if _pending.timer is None:
        _pending.timer = loop.call_later(MAX_DELAY_S, run_pending)


def run_pending() -> None:
    """Runs what was put off, in order; called where the process is about to wait anyway."""
    pending = _pending
    if pending.timer is not None:
        pending.timer.cancel()
        pending.timer = None
    while pending.work:
        batch, pending.work = pending.work, []
        for work in batch:
            _run(work)


def _run(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:
        log.exception("deferred work failed")
