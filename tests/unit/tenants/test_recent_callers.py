"""Authentication remembered for a second, on the real SQLite stores through the composition
root: revocation here is immediate, revocation by another process (a second `TenantService`
on the same file, as the CLI would be) takes effect within `AUTH_TTL_S`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lockgate.api.errors import GatewayError
from lockgate.bootstrap import build
from lockgate.pipeline import RequestContext
from lockgate.settings import Settings
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.tenants import SqliteTenantStore
from lockgate.tenants.directory import AUTH_TTL_S, RecentCallers
from lockgate.tenants.keys import Tenant
from lockgate.tenants.service import TenantService


async def test_revoking_here_is_immediate_and_elsewhere_within_the_ttl(tmp_path: Path) -> None:
    container = build(Settings(data_dir=tmp_path))
    gateway = container.gateway
    container.tenants.create_tenant("acme")
    here = container.tenants.create_key("acme")
    elsewhere = container.tenants.create_key("acme")
    for issued in (here, elsewhere):
        tenant = await gateway.authenticate(issued.key, RequestContext("r"))
        assert tenant == Tenant("acme")

    container.tenants.revoke_key(here.record.key_id)
    with pytest.raises(GatewayError) as refused:
        await gateway.authenticate(here.key, RequestContext("r"))
    assert refused.value.status == 401

    assert await gateway.authenticate(elsewhere.key, RequestContext("r")) == Tenant("acme")
    db = tmp_path / "lockgate.db"
    cli = TenantService(SqliteTenantStore(db), SqliteKeyStore(db))
    cli.revoke_key(elsewhere.record.key_id)
    assert await gateway.authenticate(elsewhere.key, RequestContext("r")) == Tenant("acme")
    await asyncio.sleep(AUTH_TTL_S + 0.05)
    with pytest.raises(GatewayError):
        await gateway.authenticate(elsewhere.key, RequestContext("r"))


def test_only_successes_are_remembered_and_the_size_is_bounded() -> None:
    now = [0.0]
    recent = RecentCallers(ttl_s=1.0, max_entries=2, clock=lambda: now[0])
    recent.put("lg-a", None, Tenant("a"))
    assert recent.get("lg-a", None) == Tenant("a")
    assert recent.get("lg-b", None) is None
    assert recent.get(None, "lg-a") is None  # a key is not an API Gateway key id
    recent.put("lg-b", None, Tenant("b"))
    recent.put("lg-c", None, Tenant("c"))  # full: starts over
    assert recent.get("lg-a", None) is None and recent.get("lg-c", None) == Tenant("c")
    now[0] = 1.0
    assert recent.get("lg-c", None) is None
