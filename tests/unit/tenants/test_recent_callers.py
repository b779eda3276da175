"""Authentication remembered for a second, on the real SQLite stores through the composition
root: revocation here is immediate, revocation by another process (a second `TenantService`
on the same file, as the CLI would be) takes effect within `AUTH_TTL_S`, and sooner for a key
in use, which is read again in the background once half of that is up."""

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


async def test_a_key_in_use_is_read_again_before_its_time_is_up(tmp_path: Path) -> None:
    container = build(Settings(data_dir=tmp_path))
    gateway = container.gateway
    container.tenants.create_tenant("acme")
    issued = container.tenants.create_key("acme")
    assert await gateway.authenticate(issued.key, RequestContext("r")) == Tenant("acme")
    db = tmp_path / "lockgate.db"
    TenantService(SqliteTenantStore(db), SqliteKeyStore(db)).revoke_key(issued.record.key_id)

    await asyncio.sleep(AUTH_TTL_S * 0.6)
    # Past half its time the remembered answer still serves while the key store is read.
    assert await gateway.authenticate(issued.key, RequestContext("r")) == Tenant("acme")
    await asyncio.sleep(AUTH_TTL_S * 0.2)
    with pytest.raises(GatewayError) as refused:  # the read found it revoked: refused at once
        await gateway.authenticate(issued.key, RequestContext("r"))
    assert refused.value.status == 401


def test_only_successes_are_remembered_refreshed_at_half_time_and_bounded() -> None:
    now = [0.0]
    recent = RecentCallers(ttl_s=1.0, max_entries=2, clock=lambda: now[0])
    recent.put("lg-a", None, Tenant("a"))
    assert recent.lookup("lg-a", None)[0] == Tenant("a")
    assert recent.lookup("lg-b", None)[0] is None
    assert recent.lookup(None, "lg-a")[0] is None  # a key is not an API Gateway key id
    recent.put("lg-b", None, Tenant("b"))
    recent.put("lg-c", None, Tenant("c"))  # full: starts over
    assert recent.lookup("lg-a", None)[0] is None
    assert recent.lookup("lg-c", None) == (Tenant("c"), False)
    now[0] = 0.5  # half its time: still the answer, and time to read it again
    assert recent.lookup("lg-c", None) == (Tenant("c"), True)
    now[0] = 1.0
    assert recent.lookup("lg-c", None)[0] is None
