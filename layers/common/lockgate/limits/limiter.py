"""Admission: requests and tokens per minute, per key and per tenant, plus the monthly budget.

One atomic acquire per request covers every counter that applies (key requests, key tokens,
tenant requests, tenant tokens, the month's token budget): either all are incremented or none,
so a request refused by the tenant's limit does not use up its key's. Tokens are admitted
against an estimate and corrected by `settle` with the provider's count.

Store calls run in the store pool (`lockgate.stores.offload`), never on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lockgate.errors import GatewayError
from lockgate.limits.budgets import (
    BudgetStatus,
    budget_counter,
    budget_exceeded,
    period_end,
)
from lockgate.limits.ports import Acquired, CounterStore, Increment
from lockgate.limits.usage import UsageLedger
from lockgate.limits.windows import (
    WINDOW_S,
    reset_duration,
    retry_after,
    window_end,
    window_of,
)
from lockgate.stores.offload import offload
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.keys import Tenant
from lockgate.tenants.models import RateLimits
from lockgate.tenants.tiers import ROUTING_TIERS, tier_of

_SCOPE_NAMES = {"k": "API key", "t": "tenant"}
_KIND_NAMES = {"rpm": "requests per minute", "tpm": "tokens per minute"}


@dataclass(slots=True)
class Admission:
    """A request let in: the headers to send, what to correct later, and the tier cap."""

    tenant_id: str
    key_id: str | None
    estimated_tokens: int
    headers: dict[str, str] = field(default_factory=dict)
    max_routing_tier: str | None = None
    """`auto` must not route above this tier (tenant tier or budget); None: no cap."""
    budget: BudgetStatus | None = None
    token_counters: tuple[tuple[str, float], ...] = ()
    """(counter, expires_at) of every counter the estimate was added to."""
    admitted_at: float = 0.0
    settled: bool = False

    def check_model(self, alias: str) -> None:
        """An explicit alias is refused once a step-down budget is spent; `auto` goes on."""
        if alias != "auto" and self.budget is not None and self.budget.exhausted:
            raise budget_exceeded(self.budget, self.tenant_id, self.admitted_at)


class Limiter:
    def __init__(
        self,
        counters: CounterStore,
        directory: TenantDirectory,
        ledger: UsageLedger,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counters = counters
        self._directory = directory
        self._ledger = ledger
        self._clock = clock

    async def check(self, tenant: Tenant, key_id: str | None, estimated_tokens: int) -> Admission:
        """Admits the request or raises `GatewayError` 429 (rate limit, with `Retry-After` and
        `x-ratelimit-*` headers; or the budget, code `budget_exceeded`)."""
        estimated_tokens = max(0, estimated_tokens)
        key_id = key_id or tenant.key_id
        record = await self._directory.atenant(tenant.id)
        key = await self._directory.akey(key_id)
        tier = tier_of(record)
        tenant_limits = (record.limits if record else None) or tier.limits
        key_limits = (key.limits if key else None) or (record.key_limits if record else None)
        key_limits = key_limits or tier.key_limits

        now = self._clock()
        admission = Admission(tenant.id, key_id, estimated_tokens, admitted_at=now)
        if tier.max_routing_tier != ROUTING_TIERS[-1]:
            admission.max_routing_tier = tier.max_routing_tier
        status: BudgetStatus | None = None
        if record is not None and not record.budget.unlimited:
            status = await self._ledger.budget(tenant.id, record.budget)
            if status.exhausted and record.budget.on_exhausted == "block":
                raise budget_exceeded(status, tenant.id, now)

        window = window_of(now)
        scopes: list[tuple[str, str, RateLimits]] = [("t", tenant.id, tenant_limits)]
        if key_id:
            scopes.insert(0, ("k", key_id, key_limits))
        increments: list[Increment] = []
        expiry: dict[str, float] = {}
        for scope, ident, limits in scopes:
            if limits.requests_per_minute is not None:
                increments.append(
                    Increment(f"rpm:{scope}:{ident}:{window}", 1, limits.requests_per_minute)
                )
            if limits.tokens_per_minute is not None:
                if estimated_tokens > limits.tokens_per_minute:
                    raise _too_large(scope, estimated_tokens, limits.tokens_per_minute)
                counter = f"tpm:{scope}:{ident}:{window}"
                increments.append(Increment(counter, estimated_tokens, limits.tokens_per_minute))
                expiry[counter] = window_end(window) + WINDOW_S
        budget_key = None
        if status is not None and status.budget.monthly_tokens is not None:
            # Reserved with the rate counters, atomically; a step-down budget only counts.
            budget_key = budget_counter(tenant.id, status.period)
            blocks = status.budget.on_exhausted == "block"
            if blocks and estimated_tokens > status.budget.monthly_tokens - status.spent_tokens:
                raise budget_exceeded(status, tenant.id, now, needed=estimated_tokens)
            expiry[budget_key] = period_end(status.period) + 86400
            limit = status.budget.monthly_tokens if blocks else None
            increments.append(Increment(budget_key, estimated_tokens, limit, expiry[budget_key]))
        if not increments:
            admission.budget = status
            self._cap_by_budget(admission)
            return admission
        result = await offload(self._counters.acquire, increments, window_end(window) + WINDOW_S)
        reset = window_end(window) - now
        if budget_key is not None and result.refused == budget_key and status is not None:
            reserved = status.reserving(result.values.get(budget_key, 0))
            raise budget_exceeded(reserved, tenant.id, now, needed=estimated_tokens)
        headers = _headers(increments, result, reset)
        if not result.admitted:
            raise _rate_limited(increments, result, reset, headers)
        admission.headers = headers
        admission.token_counters = tuple(expiry.items())
        if status is not None and budget_key is not None:
            status = status.reserving(result.values.get(budget_key, 0) - estimated_tokens)
        admission.budget = status
        self._cap_by_budget(admission)
        return admission

    @staticmethod
    def _cap_by_budget(admission: Admission) -> None:
        status = admission.budget
        if status is None or status.max_routing_tier is None:
            return
        cap = admission.max_routing_tier or ROUTING_TIERS[-1]
        admission.max_routing_tier = min(cap, status.max_routing_tier, key=ROUTING_TIERS.index)

    async def settle(self, admission: Admission, actual_tokens: int) -> None:
        """Replaces the estimate with the provider's count in the admitting window. Settling
        twice is a no-op, so it is safe in a `finally`."""
        if admission.settled:
            return
        admission.settled = True
        delta = max(0, actual_tokens) - admission.estimated_tokens
        if delta == 0 or not admission.token_counters:
            return
        await offload(self._adjust, admission.token_counters, delta)

    def _adjust(self, counters: tuple[tuple[str, float], ...], delta: int) -> None:
        for key, expires_at in counters:
            self._counters.adjust(key, delta, expires_at)


def _binding(increments: list[Increment], result: Acquired, kind: str) -> Increment | None:
    """The counter of this kind with the least room left: what the headers report."""
    candidates = [i for i in increments if i.key.startswith(kind + ":") and i.limit is not None]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (i.limit or 0) - result.values.get(i.key, 0))


def _headers(increments: list[Increment], result: Acquired, reset: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    for kind, suffix in (("rpm", "requests"), ("tpm", "tokens")):
        chosen = _binding(increments, result, kind)
        if chosen is None or chosen.limit is None:
            continue
        remaining = max(0, chosen.limit - result.values.get(chosen.key, 0))
        headers[f"x-ratelimit-limit-{suffix}"] = str(chosen.limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = str(remaining)
        headers[f"x-ratelimit-reset-{suffix}"] = reset_duration(reset)
    return headers


def _describe(key: str) -> tuple[str, str]:
    """`rpm:k:<id>:<window>` → ("requests per minute", "API key <id>"); ids may hold ':'."""
    kind, scope, rest = key.split(":", 2)
    return _KIND_NAMES[kind], f"{_SCOPE_NAMES[scope]} {rest.rsplit(':', 1)[0]}"


def _rate_limited(
    increments: list[Increment], result: Acquired, reset: float, headers: dict[str, str]
) -> GatewayError:
    refused = next(i for i in increments if i.key == result.refused)
    what, who = _describe(refused.key)
    used = result.values.get(refused.key, 0)
    return GatewayError(
        429,
        f"Rate limit reached for {who} on {what}: limit {refused.limit}, used {used}, "
        f"requested {refused.amount}. Please try again in {retry_after(reset)}s.",
        type="tokens" if refused.key.startswith("tpm:") else "requests",
        code="rate_limit_exceeded",
        headers={**headers, "retry-after": retry_after(reset)},
    )


def _too_large(scope: str, requested: int, limit: int) -> GatewayError:
    return GatewayError(
        429,
        f"Request too large for the {_SCOPE_NAMES[scope]}'s tokens per minute limit: "
        f"limit {limit}, requested {requested} (prompt estimate plus max_tokens). "
        "Shorten the prompt or lower max_tokens.",
        type="tokens",
        code="rate_limit_exceeded",
    )
