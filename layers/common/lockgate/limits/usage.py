"""Usage accounting per request, aggregated per tenant and month, and the `/v1/usage` view.

Rows are aggregates (`*` for the tenant, `alias:<name>`, `key:<id>`), not request logs: the
summary and the budget check are then single reads, in SQLite and DynamoDB alike.

Records are added up in memory and written in one batch every `FLUSH_EVERY_S`: a write per
request was the largest cost of serving one. Reads in this process include what is not written
yet, so budgets stay exact here; other processes see it within the flush interval. With a
`journal` (the embedded shape), each record is appended to it first, so a killed process loses
nothing: `recover` replays what it left at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lockgate.limits.budgets import BudgetStatus, budget_status, month_of
from lockgate.limits.ports import UsageStore, UsageTotals
from lockgate.limits.pricing import cost_usd
from lockgate.policy import Price
from lockgate.stores.offload import offload
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.models import Budget

if TYPE_CHECKING:
    from lockgate.stores.embedded.journal import Journal

log = logging.getLogger("lockgate.usage")

ALL = "*"
FLUSH_EVERY_S = 0.25
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class UsageEvent:
    tenant_id: str
    key_id: str | None
    alias: str | None
    target: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    cost_usd: float
    saved_usd: float
    period: str


class UsageLedger:
    def __init__(
        self,
        store: UsageStore,
        prices: Mapping[str, Price],
        directory: TenantDirectory | None = None,
        *,
        clock: Callable[[], float] = time.time,
        journal: Journal | None = None,
    ) -> None:
        self._journal = journal
        self._sealed: list[Path] = []
        self._store = store
        self._prices = prices
        self._directory = directory
        self._clock = clock
        self._pending: dict[tuple[str, str, tuple[str, ...]], UsageTotals] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def record(
        self,
        *,
        tenant_id: str,
        key_id: str | None,
        alias: str | None,
        target: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        cached: bool = False,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> UsageEvent:
        """Accounts one request. Call it from a `finally`, so an abandoned stream is counted
        with the tokens it produced. A cache hit costs nothing and is credited with what the
        call would have cost at `target`'s price."""
        price = cost_usd(
            self._prices,
            target,
            max(0, prompt_tokens),
            max(0, completion_tokens),
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        event = UsageEvent(
            tenant_id=tenant_id,
            key_id=key_id,
            alias=alias,
            target=target,
            prompt_tokens=max(0, prompt_tokens),
            completion_tokens=max(0, completion_tokens),
            cached=cached,
            cost_usd=0.0 if cached else price,
            saved_usd=price if cached else 0.0,
            period=month_of(self._clock()),
        )
        totals = UsageTotals(
            requests=1,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            billable_tokens=0 if cached else event.prompt_tokens + event.completion_tokens,
            cost_usd=event.cost_usd,
            cache_hits=1 if cached else 0,
            saved_usd=event.saved_usd,
            cache_read_tokens=0 if cached else max(0, cache_read_tokens),
            cache_write_tokens=0 if cached else max(0, cache_write_tokens),
        )
        dims = [ALL]
        if alias:
            dims.append(f"alias:{alias}")
        if key_id:
            dims.append(f"key:{key_id}")
        if self._journal is not None:
            self._journal.append([tenant_id, event.period, dims, totals.as_dict()])
        _add(
            self._pending.setdefault((tenant_id, event.period, tuple(dims)), UsageTotals()), totals
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
        return event

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_EVERY_S)
        await self.flush()

    async def flush(self) -> None:
        """Writes what has been recorded since the last flush; on failure keeps it for the
        next one, so a backend blip loses nothing."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        if self._journal is not None:
            self._sealed.append(self._journal.seal())
        try:
            await offload(self._write, batch)
        except Exception:
            log.exception("usage flush failed; %d rows kept for the next one", len(batch))
            for key, totals in batch.items():
                _add(self._pending.setdefault(key, UsageTotals()), totals)
            return
        if self._journal is not None:
            for sealed in self._sealed:
                self._journal.release(sealed)
        self._sealed.clear()

    async def recover(self) -> int:
        """Stores what a killed process had journaled but not written; returns how many
        records. Run once at start, before the first request."""
        if self._journal is None:
            return 0
        recovered = 0
        for sealed, records in self._journal.leftovers():
            batch: dict[tuple[str, str, tuple[str, ...]], UsageTotals] = {}
            for tenant_id, period, dims, totals in records:
                _add(
                    batch.setdefault((tenant_id, period, tuple(dims)), UsageTotals()),
                    UsageTotals(**totals),
                )
            await asyncio.to_thread(self._write, batch)
            self._journal.release(sealed)
            recovered += len(records)
        return recovered

    def _write(self, batch: dict[tuple[str, str, tuple[str, ...]], UsageTotals]) -> None:
        for (tenant_id, period, dims), totals in batch.items():
            self._store.add(tenant_id, period, list(dims), totals)

    async def totals(self, tenant_id: str, period: str | None = None) -> dict[str, UsageTotals]:
        period = period or month_of(self._clock())
        rows = await offload(self._store.totals, tenant_id, period)
        for (tenant, month, dims), totals in self._pending.items():
            if tenant == tenant_id and month == period:
                for dim in dims:
                    _add(rows.setdefault(dim, UsageTotals()), totals)
        return rows

    async def budget(self, tenant_id: str, budget: Budget) -> BudgetStatus:
        period = month_of(self._clock())
        if budget.unlimited:
            return budget_status(budget, None, period)
        rows = await self.totals(tenant_id, period)
        return budget_status(budget, rows.get(ALL), period)

    async def usage_summary(self, tenant_id: str, period: str | None = None) -> dict[str, object]:
        """What `GET /v1/usage` returns: the calling tenant's month, never anyone else's.

        `period` is `YYYY-MM` (UTC) or None for the current month; anything else is a
        ValueError with a message fit for a 400.
        """
        if period is not None and not _PERIOD.match(period):
            raise ValueError("period must be a month written YYYY-MM (UTC), e.g. 2025-01")
        period = period or month_of(self._clock())
        rows = await self.totals(tenant_id, period)
        total = rows.get(ALL, UsageTotals())
        summary: dict[str, object] = {
            "object": "usage",
            "tenant": tenant_id,
            "period": period,
            "requests": total.requests,
            "prompt_tokens": total.prompt_tokens,
            "completion_tokens": total.completion_tokens,
            "total_tokens": total.prompt_tokens + total.completion_tokens,
            "cost_usd": round(total.cost_usd, 6),
            "cache": {"hits": total.cache_hits, "saved_usd": round(total.saved_usd, 6)},
            "prompt_cache": {
                "read_tokens": total.cache_read_tokens,
                "write_tokens": total.cache_write_tokens,
            },
            "by_model": _breakdown(rows, "alias:"),
            "by_key": _breakdown(rows, "key:"),
        }
        record = await self._directory.atenant(tenant_id) if self._directory else None
        if record is not None and not record.budget.unlimited:
            summary["budget"] = budget_status(record.budget, total, period).as_dict()
        return summary


def _add(into: UsageTotals, more: UsageTotals) -> None:
    for name in UsageTotals.counted():
        setattr(into, name, getattr(into, name) + getattr(more, name))


def _breakdown(rows: dict[str, UsageTotals], prefix: str) -> dict[str, dict[str, int | float]]:
    return {
        dim.removeprefix(prefix): {
            "requests": t.requests,
            "total_tokens": t.prompt_tokens + t.completion_tokens,
            "cost_usd": round(t.cost_usd, 6),
            "cache_hits": t.cache_hits,
        }
        for dim, t in sorted(rows.items())
        if dim.startswith(prefix)
    }
