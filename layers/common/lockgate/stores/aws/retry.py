"""Retrying DynamoDB writes that lost a race with another transaction.

DynamoDB cancels a `TransactWriteItems` with reason `TransactionConflict` when another
transaction holds one of its items, and rejects a plain write to such an item with
`TransactionConflictException`. Either way nothing was written, so the same request can be sent
again without counting twice. Hot tenants hit this under load: retrying with full-jitter
backoff (bounded) turns the conflict into a few milliseconds of waiting instead of a 5xx.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ATTEMPTS = 8
BASE_S = 0.01
CAP_S = 0.2


def conflicted(exc: Exception) -> bool:
    """True when DynamoDB refused the write only because of a concurrent transaction."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = [r.get("Code") for r in response.get("CancellationReasons") or []]
    return "TransactionConflict" in reasons and all(
        r in ("TransactionConflict", "None", None) for r in reasons
    )


def retry_conflicts(
    write: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """`write()`, again after a jittered pause each time it loses a conflict; the last
    conflict is raised once `attempts` are used up."""
    for attempt in range(attempts):
        try:
            return write()
        except Exception as exc:
            if not conflicted(exc) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, min(CAP_S, BASE_S * 2**attempt)))
    raise AssertionError("unreachable")
