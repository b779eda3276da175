"""Monthly budgets: how much of the month's allowance a tenant has spent, and what follows.

Token budgets are reserved before the call: each request adds its estimate (prompt plus
`max_tokens`) to the month's budget counter in the same atomic acquire as its rate limits, and
`Limiter.settle` replaces it with the provider's count. A `block` budget's counter is
conditional on staying within the budget, so concurrent requests cannot all pass a check that
each would pass alone; what can still go over is only what a provider counts beyond the
estimate. Cost budgets (USD) are checked against recorded usage, since the price is only known
once the route is.

With `on_exhausted: block` a spent budget refuses requests. With `step_down`, `auto` keeps
serving from cheaper routing tiers: past `step_down_at` of the budget it may use at most the
middle tier, and once the budget is spent only the simplest one; explicit aliases are refused
once the budget is spent.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from lockgate.errors import GatewayError
from lockgate.limits.ports import UsageTotals
from lockgate.tenants.models import Budget
from lockgate.tenants.tiers import ROUTING_TIERS


def month_of(now: float | None = None) -> str:
    """The UTC calendar month, `YYYY-MM`: the budget and usage period. Every request asks,
    so the last answer is kept with the month's bounds."""
    global _month
    now = time.time() if now is None else now
    start, end, label = _month
    if start <= now < end:
        return label
    label = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
    year, month = (int(part) for part in label.split("-"))
    _month = (datetime(year, month, 1, tzinfo=UTC).timestamp(), period_end(label), label)
    return label


_month: tuple[float, float, str] = (0.0, 0.0, "")


def period_end(period: str) -> float:
    """When the month `YYYY-MM` ends (the next one starts), in epoch seconds."""
    year, month = (int(part) for part in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def budget_counter(tenant_id: str, period: str) -> str:
    """The counter holding a tenant's reserved and spent tokens for the month."""
    return f"budget:t:{tenant_id}:{period}"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    spent_tokens: int
    spent_usd: float
    period: str

    @property
    def spent_share(self) -> float:
        """The larger of the token and the cost share spent (0 when there is no budget)."""
        shares = [0.0]
        if self.budget.monthly_tokens:
            shares.append(self.spent_tokens / self.budget.monthly_tokens)
        if self.budget.monthly_usd:
            shares.append(self.spent_usd / self.budget.monthly_usd)
        return max(shares)

    @property
    def exhausted(self) -> bool:
        return not self.budget.unlimited and self.spent_share >= 1.0

    @property
    def max_routing_tier(self) -> str | None:
        """The most capable routing tier `auto` may use; None when the budget does not cap it."""
        if self.budget.on_exhausted != "step_down" or self.budget.unlimited:
            return None
        if self.exhausted:
            return ROUTING_TIERS[0]
        if self.spent_share >= self.budget.step_down_at:
            return ROUTING_TIERS[1]
        return None

    def reserving(self, reserved_tokens: int) -> BudgetStatus:
        """This status counting tokens reserved by requests still in flight, when more."""
        return replace(self, spent_tokens=max(self.spent_tokens, reserved_tokens))

    def describe(self) -> str:
        parts = []
        if self.budget.monthly_tokens:
            parts.append(f"{self.spent_tokens} of {self.budget.monthly_tokens} tokens")
        if self.budget.monthly_usd:
            parts.append(f"${self.spent_usd:.4f} of ${self.budget.monthly_usd:.2f}")
        return f"monthly budget for {self.period}: " + ", ".join(parts) + " used"

    def as_dict(self) -> dict[str, object]:
        return {
            "monthly_tokens": self.budget.monthly_tokens,
            "monthly_usd": self.budget.monthly_usd,
            "spent_tokens": self.spent_tokens,
            "spent_usd": round(self.spent_usd, 6),
            "on_exhausted": self.budget.on_exhausted,
            "exhausted": self.exhausted,
        }


def budget_status(budget: Budget, totals: UsageTotals | None, period: str) -> BudgetStatus:
    totals = totals or UsageTotals()
    return BudgetStatus(budget, totals.billable_tokens, totals.cost_usd, period)


def budget_exceeded(
    status: BudgetStatus, tenant_id: str, now: float, *, needed: int | None = None
) -> GatewayError:
    """429 with OpenAI's `insufficient_quota` type; `Retry-After` says when the month renews,
    and `x-should-retry: false` keeps the OpenAI and Anthropic SDKs from retrying sooner."""
    if needed is None:
        what = f"Tenant {tenant_id!r} has spent its {status.describe()}."
    else:
        what = (
            f"This request may use up to {needed} tokens (prompt estimate plus max_tokens), "
            f"more than is left of tenant {tenant_id!r}'s {status.describe()}; a lower "
            "max_tokens may fit."
        )
    wait = max(1, math.ceil(period_end(status.period) - now))
    return GatewayError(
        429,
        what + " It renews at the start of next month (UTC); ask an administrator to raise it.",
        type="insufficient_quota",
        code="budget_exceeded",
        headers={"retry-after": str(wait), "x-should-retry": "false"},
    )


def cap_routing_tier(tier: str, max_tier: str | None) -> str:
    """The tier `auto` should use under a budget cap."""
    if max_tier is None or tier not in ROUTING_TIERS:
        return tier
    return min(tier, max_tier, key=ROUTING_TIERS.index)
