"""Monthly budgets and usage accounting, through the limiter and ledger on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lockgate.api.errors import GatewayError
from lockgate.limits.budgets import cap_routing_tier
from lockgate.limits.limiter import Admission, Limiter
from lockgate.limits.usage import UsageLedger
from lockgate.policy import Price
from lockgate.stores.embedded.counters import SqliteCounterStore, SqliteUsageStore
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.tenants import SqliteTenantStore
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.keys import Tenant
from lockgate.tenants.models import Budget
from lockgate.tenants.service import TenantService

JAN = 1_735_700_000.0  # 2025-01-01, UTC
PRICES = {"oa/gpt-4o": Price(input=2.5, output=10.0)}


class Setup:
    def __init__(self, tmp: Path) -> None:
        db = tmp / "l.db"
        self.now = JAN
        tenants, keys = SqliteTenantStore(db), SqliteKeyStore(db)
        self.service = TenantService(tenants, keys)
        directory = TenantDirectory(tenants, keys, ttl_s=0)
        self.ledger = UsageLedger(SqliteUsageStore(db), PRICES, directory, clock=self.clock)
        self.limiter = Limiter(SqliteCounterStore(db), directory, self.ledger, clock=self.clock)

    def clock(self) -> float:
        return self.now

    async def spend(self, tenant: str, tokens: int, *, cached: bool = False) -> None:
        await self.ledger.record(
            tenant_id=tenant,
            key_id="key_1",
            alias="smart",
            target="oa/gpt-4o",
            prompt_tokens=tokens // 2,
            completion_tokens=tokens - tokens // 2,
            cached=cached,
        )


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


async def test_spent_token_budget_refuses_naming_the_budget(setup: Setup) -> None:
    setup.service.create_tenant("acme", budget=Budget(monthly_tokens=1000))
    await setup.spend("acme", 999)
    await setup.limiter.check(Tenant("acme"), None, 1)
    await setup.spend("acme", 1)
    with pytest.raises(GatewayError) as refused:
        await setup.limiter.check(Tenant("acme"), None, 10)
    error = refused.value
    assert error.status == 429 and error.code == "budget_exceeded"
    assert error.type == "insufficient_quota"
    assert "monthly budget for 2025-01: 1000 of 1000 tokens used" in error.message
    february = 1_738_368_000  # 2025-02-01T00:00Z
    assert error.headers["retry-after"] == str(february - int(JAN))
    assert error.headers["x-should-retry"] == "false"
    setup.now += 31 * 86400  # February: a fresh budget
    await setup.limiter.check(Tenant("acme"), None, 10)


async def test_cache_hits_do_not_spend_the_budget(setup: Setup) -> None:
    setup.service.create_tenant("acme", budget=Budget(monthly_tokens=1000))
    await setup.spend("acme", 5000, cached=True)
    await setup.limiter.check(Tenant("acme"), None, 10)


async def test_cost_budget_uses_the_price_table(setup: Setup) -> None:
    setup.service.create_tenant("acme", budget=Budget(monthly_usd=0.01))
    # 1000 prompt tokens at $2.5/M + 1000 completion at $10/M = $0.0125
    await setup.spend("acme", 2000)
    with pytest.raises(GatewayError) as refused:
        await setup.limiter.check(Tenant("acme"), None, 10)
    assert "$0.0125 of $0.01" in refused.value.message


async def test_step_down_budget_lowers_auto_instead_of_refusing(setup: Setup) -> None:
    setup.service.create_tenant(
        "acme", budget=Budget(monthly_tokens=1000, on_exhausted="step_down", step_down_at=0.5)
    )
    assert (await setup.limiter.check(Tenant("acme"), None, 1)).max_routing_tier is None
    await setup.spend("acme", 600)
    admission = await setup.limiter.check(Tenant("acme"), None, 1)
    assert admission.max_routing_tier == "medium"
    assert cap_routing_tier("complex", admission.max_routing_tier) == "medium"
    await setup.spend("acme", 400)
    admission = await setup.limiter.check(Tenant("acme"), None, 1)
    assert admission.max_routing_tier == "simple"
    admission.check_model("auto")
    with pytest.raises(GatewayError) as refused:
        admission.check_model("smart")
    assert refused.value.code == "budget_exceeded"


async def test_usage_summary_shows_only_the_callers_own_usage(setup: Setup) -> None:
    setup.service.create_tenant("acme")
    await setup.spend("acme", 2000)
    await setup.spend("acme", 2000, cached=True)
    await setup.spend("globex", 40)
    acme = await setup.ledger.usage_summary("acme")
    assert acme["tenant"] == "acme" and acme["period"] == "2025-01"
    assert acme["requests"] == 2 and acme["total_tokens"] == 4000
    assert acme["cost_usd"] == pytest.approx(0.0125)
    assert acme["cache"] == {"hits": 1, "saved_usd": pytest.approx(0.0125)}
    assert acme["by_key"] == {
        "key_1": {"requests": 2, "total_tokens": 4000, "cost_usd": 0.0125, "cache_hits": 1}
    }
    assert "globex" not in str(acme)
    globex = await setup.ledger.usage_summary("globex")
    assert globex["requests"] == 1 and globex["total_tokens"] == 40
    empty = await setup.ledger.usage_summary("acme", "2024-12")
    assert empty["requests"] == 0
    with pytest.raises(ValueError, match="YYYY-MM"):
        await setup.ledger.usage_summary("acme", "last month")


async def test_concurrent_requests_reserve_the_budget_before_the_call(setup: Setup) -> None:
    """Nothing spent yet, so the recorded usage lets every request in; the reservations let
    in only as many as the budget covers."""
    setup.service.create_tenant("acme", budget=Budget(monthly_tokens=100))
    results = await asyncio.gather(
        *(setup.limiter.check(Tenant("acme"), None, 30) for _ in range(50)),
        return_exceptions=True,
    )
    admitted = [r for r in results if isinstance(r, Admission)]
    refused = [r for r in results if isinstance(r, GatewayError)]
    assert len(admitted) == 3 and len(refused) == 47
    assert all(r.code == "budget_exceeded" and "up to 30 tokens" in r.message for r in refused)


async def test_settling_gives_back_what_a_request_did_not_use(setup: Setup) -> None:
    setup.service.create_tenant("acme", budget=Budget(monthly_tokens=100))
    first = await setup.limiter.check(Tenant("acme"), None, 60)
    with pytest.raises(GatewayError):
        await setup.limiter.check(Tenant("acme"), None, 60)
    await setup.limiter.settle(first, 20)  # the provider counted 20
    await setup.limiter.check(Tenant("acme"), None, 80)
    with pytest.raises(GatewayError, match="100 of 100 tokens used"):
        await setup.limiter.check(Tenant("acme"), None, 1)


async def test_a_request_bigger_than_the_budget_left_is_refused_before_any_counter(
    setup: Setup,
) -> None:
    setup.service.create_tenant("acme", budget=Budget(monthly_tokens=100))
    await setup.spend("acme", 90)
    with pytest.raises(GatewayError, match="lower max_tokens"):
        await setup.limiter.check(Tenant("acme"), None, 11)
    await setup.limiter.check(Tenant("acme"), None, 10)
