"""Admission at the exact boundary, per key and per tenant, against the real SQLite stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from lockgate.api.errors import GatewayError
from lockgate.limits.limiter import Limiter
from lockgate.limits.usage import UsageLedger
from lockgate.stores.embedded.counters import SqliteCounterStore, SqliteUsageStore
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.tenants import SqliteTenantStore
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.keys import Tenant
from lockgate.tenants.models import RateLimits
from lockgate.tenants.service import TenantService


class Clock:
    def __init__(self, now: float = 1_700_000_020.0) -> None:  # 40 s into a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, tmp: Path) -> None:
        db = tmp / "lockgate.db"
        self.clock = Clock()
        self.tenants = SqliteTenantStore(db)
        self.keys = SqliteKeyStore(db, clock=self.clock)
        self.service = TenantService(self.tenants, self.keys, clock=self.clock)
        self.directory = TenantDirectory(self.tenants, self.keys, ttl_s=0)
        self.counters = SqliteCounterStore(db, clock=self.clock)
        self.ledger = UsageLedger(SqliteUsageStore(db), {}, self.directory, clock=self.clock)
        self.limiter = Limiter(self.counters, self.directory, self.ledger, clock=self.clock)

    def caller(self, tenant_id: str, **kwargs: object) -> Tenant:
        if self.tenants.get_tenant(tenant_id) is None:
            self.service.create_tenant(tenant_id, **kwargs)  # type: ignore[arg-type]
        issued = self.service.create_key(tenant_id)
        return Tenant(tenant_id, issued.record.key_id)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


async def test_nth_request_passes_and_next_one_gets_429_until_the_window_ends(
    world: World,
) -> None:
    caller = world.caller("acme", key_limits=RateLimits(requests_per_minute=3))
    remaining = []
    for _ in range(3):
        admission = await world.limiter.check(caller, caller.key_id, 10)
        remaining.append(admission.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    assert admission.headers["x-ratelimit-limit-requests"] == "3"
    assert admission.headers["x-ratelimit-reset-requests"] == "20s"

    with pytest.raises(GatewayError) as refused:
        await world.limiter.check(caller, caller.key_id, 10)
    error = refused.value
    assert error.status == 429 and error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert error.headers["retry-after"] == "20"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert "requests per minute" in error.message and caller.key_id in error.message

    world.clock.now += 20  # the next minute starts
    admission = await world.limiter.check(caller, caller.key_id, 10)
    assert admission.headers["x-ratelimit-remaining-requests"] == "2"


async def test_tokens_are_admitted_on_the_estimate_and_corrected_by_usage(world: World) -> None:
    caller = world.caller("acme", key_limits=RateLimits(tokens_per_minute=1000))
    admissions = [await world.limiter.check(caller, None, 250) for _ in range(4)]
    assert admissions[-1].headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(GatewayError) as refused:
        await world.limiter.check(caller, None, 250)
    assert refused.value.type == "tokens" and "tokens per minute" in refused.value.message

    # The provider counted 100 where 250 were estimated: 150 tokens come back.
    await world.limiter.settle(admissions[0], 100)
    await world.limiter.settle(admissions[0], 100)  # settling twice changes nothing
    admission = await world.limiter.check(caller, None, 150)
    assert admission.headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(GatewayError):
        await world.limiter.check(caller, None, 1)


async def test_key_and_tenant_limits_are_counted_separately_all_or_nothing(
    world: World,
) -> None:
    first = world.caller(
        "acme",
        limits=RateLimits(requests_per_minute=3),
        key_limits=RateLimits(requests_per_minute=2),
    )
    second = world.caller("acme")
    await world.limiter.check(first, first.key_id, 1)
    await world.limiter.check(first, first.key_id, 1)
    with pytest.raises(GatewayError) as by_key:
        await world.limiter.check(first, first.key_id, 1)
    assert "API key" in by_key.value.message
    # The refused request did not count against the tenant: one tenant request is left.
    admission = await world.limiter.check(second, second.key_id, 1)
    assert admission.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(GatewayError) as by_tenant:
        await world.limiter.check(second, second.key_id, 1)
    assert "tenant acme" in by_tenant.value.message


async def test_other_tenants_have_their_own_counters(world: World) -> None:
    acme = world.caller("acme", limits=RateLimits(requests_per_minute=1))
    globex = world.caller("globex", limits=RateLimits(requests_per_minute=1))
    await world.limiter.check(acme, acme.key_id, 1)
    with pytest.raises(GatewayError):
        await world.limiter.check(acme, acme.key_id, 1)
    await world.limiter.check(globex, globex.key_id, 1)


async def test_a_request_bigger_than_the_whole_minute_is_refused_with_its_size(
    world: World,
) -> None:
    caller = world.caller("acme", limits=RateLimits(tokens_per_minute=500))
    with pytest.raises(GatewayError) as refused:
        await world.limiter.check(caller, caller.key_id, 501)
    assert refused.value.status == 429
    assert "limit 500, requested 501" in refused.value.message


async def test_callers_without_a_tenant_record_are_not_limited(world: World) -> None:
    admission = await world.limiter.check(Tenant("default"), None, 10_000_000)
    assert admission.headers == {} and admission.max_routing_tier is None


async def test_free_tier_caps_auto_at_the_simple_tier(world: World) -> None:
    caller = world.caller("student", tier="free")
    admission = await world.limiter.check(caller, caller.key_id, 10)
    assert admission.max_routing_tier == "simple"
    assert admission.headers["x-ratelimit-limit-requests"] == "20"
