"""The tenant directory under concurrency: requests in flight share one store read instead of
each queueing its own in the store pool, and a busy record is read again before it expires, in
the background, so no request waits on the store for it."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

import pytest
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.models import TenantRecord


class SlowTenants:
    """A tenant store that takes a while to answer and counts its reads."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s, self.reads = delay_s, 0
        self._lock = threading.Lock()

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        with self._lock:
            self.reads += 1
        time.sleep(self.delay_s)
        return TenantRecord(id=tenant_id) if tenant_id == "acme" else None


def directory(tenants: SlowTenants) -> TenantDirectory:
    return TenantDirectory(cast(Any, tenants), cast(Any, None), ttl_s=60)


def test_concurrent_lookups_of_one_tenant_share_one_read() -> None:
    tenants = SlowTenants()

    async def scenario() -> list[TenantRecord | None]:
        found = directory(tenants)
        return await asyncio.gather(*(found.atenant("acme") for _ in range(20)))

    records = asyncio.run(scenario())
    assert {r.id for r in records if r is not None} == {"acme"} and None not in records
    assert tenants.reads == 1


def test_different_tenants_are_read_separately_and_a_miss_is_an_answer() -> None:
    tenants = SlowTenants()

    async def scenario() -> tuple[list[Any], list[Any]]:
        found = directory(tenants)
        return await asyncio.gather(
            asyncio.gather(*(found.atenant("acme") for _ in range(3))),
            asyncio.gather(*(found.atenant("nobody") for _ in range(3))),
        )

    acme, nobody = asyncio.run(scenario())
    assert all(r is not None and r.id == "acme" for r in acme) and nobody == [None] * 3
    assert tenants.reads == 2


def test_a_cancelled_lookup_does_not_cancel_the_read_others_wait_for() -> None:
    tenants = SlowTenants(delay_s=0.1)

    async def scenario() -> TenantRecord | None:
        found = directory(tenants)
        impatient = asyncio.create_task(found.atenant("acme"))
        await asyncio.sleep(0.02)
        patient = asyncio.create_task(found.atenant("acme"))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    record = asyncio.run(scenario())
    assert record is not None and record.id == "acme"
    assert tenants.reads == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ChangingTenants(SlowTenants):
    """A slow store whose record of `acme` an administrator can change, or break."""

    def __init__(self, delay_s: float = 0.2) -> None:
        super().__init__(delay_s)
        self.tier = "standard"
        self.failing = False

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        if self.failing:
            raise OSError("disk gone")
        tier = self.tier  # what the store held when the read began
        super().get_tenant(tenant_id)
        return TenantRecord(id=tenant_id, tier=tier)


def test_a_busy_record_is_read_again_in_the_background_before_it_expires() -> None:
    tenants, clock = ChangingTenants(), Clock()

    async def scenario() -> None:
        found = TenantDirectory(cast(Any, tenants), cast(Any, None), ttl_s=10, clock=clock)
        assert (await found.atenant("acme") or TenantRecord(id="x")).tier == "standard"
        tenants.tier = "enterprise"
        clock.now = 6.0  # past half its time: the copy still serves, a read starts
        started = time.perf_counter()
        record = await found.atenant("acme")
        assert time.perf_counter() - started < tenants.delay_s / 2  # nobody waited on it
        assert record is not None and record.tier == "standard"
        await asyncio.sleep(tenants.delay_s * 2)
        assert (await found.atenant("acme") or TenantRecord(id="x")).tier == "enterprise"
        assert tenants.reads == 2

    asyncio.run(scenario())


def test_an_expired_record_is_never_served_and_a_failed_refresh_is_not_an_error() -> None:
    tenants, clock = ChangingTenants(delay_s=0.05), Clock()

    async def scenario() -> None:
        found = TenantDirectory(cast(Any, tenants), cast(Any, None), ttl_s=10, clock=clock)
        await found.atenant("acme")
        tenants.failing = True
        clock.now = 6.0
        assert await found.atenant("acme") is not None  # the refresh fails in the background
        await asyncio.sleep(0.05)
        clock.now = 10.0  # expired: the request reads the store itself, and sees its error
        with pytest.raises(OSError):
            await found.atenant("acme")
        tenants.failing, tenants.tier = False, "free"
        assert (await found.atenant("acme") or TenantRecord(id="x")).tier == "free"

    asyncio.run(scenario())


def test_forgetting_during_a_read_does_not_cache_what_it_read() -> None:
    tenants, clock = ChangingTenants(delay_s=0.1), Clock()

    async def scenario() -> None:
        found = TenantDirectory(cast(Any, tenants), cast(Any, None), ttl_s=10, clock=clock)
        reading = asyncio.create_task(found.atenant("acme"))
        await asyncio.sleep(0.03)
        tenants.tier = "free"
        found.forget()  # an administrator changed the tenant through this process
        await reading
        record = await found.atenant("acme")
        assert record is not None and record.tier == "free"

    asyncio.run(scenario())
