"""The tenant directory under concurrency: when a busy tenant's cached record expires, the
requests in flight share one store read instead of each queueing its own in the store pool."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

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
