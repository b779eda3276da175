"""Ports for counters (rate windows) and usage totals; SQLite locally, DynamoDB in AWS."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Increment:
    """Add `amount` to counter `key` only if the result stays within `limit` (None: always)."""

    key: str
    amount: int
    limit: int | None = None
    expires_at: float | None = None
    """When the counter may be deleted, if not the acquire's `expires_at` (a month's budget
    outlives a minute's window)."""


@dataclass(frozen=True, slots=True)
class Acquired:
    admitted: bool
    values: dict[str, int]
    """Every counter's value after the increments (admitted) or as found (refused)."""
    refused: str | None = None
    """The first counter that would have gone over its limit."""


class CounterStore(Protocol):
    def acquire(self, increments: Sequence[Increment], expires_at: float) -> Acquired:
        """All increments or none, atomically across processes: no lost updates, and no
        admission that takes any counter past its limit."""
        ...

    def adjust(self, key: str, delta: int, expires_at: float) -> None:
        """Unconditional correction (negative when fewer tokens were used than estimated)."""
        ...

    def values(self, keys: Sequence[str]) -> dict[str, int]: ...


@dataclass(slots=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    billable_tokens: int = 0
    """Tokens a provider was paid for: cache hits add none."""
    cost_usd: float = 0.0
    cache_hits: int = 0
    saved_usd: float = 0.0
    cache_read_tokens: int = 0
    """Prompt tokens read from a provider's prompt cache (part of `prompt_tokens`)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to a provider's prompt cache (part of `prompt_tokens`)."""

    @classmethod
    @functools.cache
    def counted(cls) -> tuple[str, ...]:
        """The field names, looked up once (every recorded request adds them up)."""
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, int | float]:
        return {name: getattr(self, name) for name in self.counted()}


class UsageStore(Protocol):
    def add(self, tenant_id: str, period: str, dims: Sequence[str], totals: UsageTotals) -> None:
        """Adds `totals` to each of the tenant's rows `dims` for the period, atomically."""
        ...

    def totals(self, tenant_id: str, period: str) -> dict[str, UsageTotals]:
        """The tenant's rows for the period, by dim; never another tenant's."""
        ...
