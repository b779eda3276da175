"""Fixed one-minute windows, and durations in the shape of OpenAI's rate-limit headers.

Why fixed windows: a fixed window makes "the N-th request in the minute passes, the N+1-th is
refused" literally true, with one counter per limit and one atomic conditional increment (in
SQLite and in DynamoDB alike). A sliding-window log would need every request's timestamp; the
sliding-window-counter approximation weighs the previous window and is not exact at the
boundary. The price is that a client can spend a full window just before a boundary and
another just after it.
"""

from __future__ import annotations

import math

WINDOW_S = 60


def window_of(now: float) -> int:
    return int(now // WINDOW_S)


def window_end(window: int) -> float:
    return float((window + 1) * WINDOW_S)


def reset_duration(seconds: float) -> str:
    """`6m0s`, `1s`, `250ms`: the format of OpenAI's `x-ratelimit-reset-*` headers."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def retry_after(seconds: float) -> str:
    """Whole seconds, at least 1: clients that round down must not retry into the same
    window."""
    return str(max(1, math.ceil(seconds)))
