"""Tenant administration and key life cycle against the real SQLite stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.tenants import SqliteTenantStore
from lockgate.tenants.auth import ApiGatewayAuthenticator, KeyStoreAuthenticator
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.keys import Tenant
from lockgate.tenants.models import Budget, RateLimits
from lockgate.tenants.service import Conflict, NotFound, TenantError, TenantService


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(tmp_path: Path, clock: Clock) -> SqliteKeyStore:
    return SqliteKeyStore(tmp_path / "t.db", clock=clock)


@pytest.fixture
def service(tmp_path: Path, keys: SqliteKeyStore, clock: Clock) -> TenantService:
    return TenantService(SqliteTenantStore(tmp_path / "t.db"), keys, clock=clock)


def test_create_list_update_tenants(service: TenantService) -> None:
    service.create_tenant("acme", name="Acme", tier="free")
    service.create_tenant("globex", models=["smart"], budget=Budget(monthly_usd=5))
    assert [t.id for t in service.list_tenants()] == ["acme", "globex"]
    updated = service.update_tenant(
        "acme", tier="enterprise", limits=RateLimits(requests_per_minute=7)
    )
    assert updated.tier == "enterprise" and updated.limits == RateLimits(requests_per_minute=7)
    assert service.get_tenant("acme").name == "Acme"
    with pytest.raises(Conflict):
        service.create_tenant("acme")
    with pytest.raises(TenantError, match="unknown tier 'gold'"):
        service.update_tenant("acme", tier="gold")
    with pytest.raises(TenantError, match="tenant id"):
        service.create_tenant("../etc")
    with pytest.raises(NotFound):
        service.update_tenant("nobody", name="x")


def test_key_is_shown_once_and_authenticates_until_revoked(
    service: TenantService, keys: SqliteKeyStore, tmp_path: Path
) -> None:
    service.create_tenant("acme")
    issued = service.create_key("acme", name="ci")
    auth = KeyStoreAuthenticator(keys)
    tenant = auth.tenant_for(issued.key, None)
    assert tenant == Tenant("acme") and tenant is not None
    assert tenant.key_id == issued.record.key_id
    listed = service.list_keys("acme")
    assert [k.key_id for k in listed] == [issued.record.key_id]
    assert "key_hash" not in listed[0].public() and issued.key not in repr(listed[0])
    assert issued.key.encode() not in (tmp_path / "t.db").read_bytes()

    service.revoke_key(issued.record.key_id)
    assert auth.tenant_for(issued.key, None) is None
    assert keys.count() == 0


def test_expired_keys_stop_working(
    service: TenantService, keys: SqliteKeyStore, clock: Clock
) -> None:
    service.create_tenant("acme")
    issued = service.create_key("acme", expires_in_s=60)
    auth = KeyStoreAuthenticator(keys)
    clock.now += 59
    assert auth.tenant_for(issued.key, None) == Tenant("acme")
    clock.now += 1
    assert auth.tenant_for(issued.key, None) is None
    with pytest.raises(TenantError, match="positive"):
        service.create_key("acme", expires_in_s=0)


def test_revoking_another_tenants_key_is_not_found(service: TenantService) -> None:
    service.create_tenant("acme")
    service.create_tenant("globex")
    issued = service.create_key("globex")
    with pytest.raises(NotFound):
        service.revoke_key(issued.record.key_id, tenant_id="acme")
    with pytest.raises(NotFound):
        service.create_key("nobody")


def test_older_key_tables_are_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "old.db")
    db.execute(
        "CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, "
        "created_at REAL NOT NULL, revoked_at REAL) WITHOUT ROWID"
    )
    db.execute("INSERT INTO api_keys VALUES ('ab' || hex(randomblob(31)), 'default', 1, NULL)")
    db.commit()
    db.close()
    store = SqliteKeyStore(tmp_path / "old.db")
    assert store.count() == 1
    (record,) = store.list_keys("default")
    assert record.key_id.startswith("key_")


def test_api_gateway_key_ids_map_to_tenants_when_keys_are_known(
    service: TenantService, keys: SqliteKeyStore, clock: Clock
) -> None:
    service.create_tenant("acme")
    issued = service.create_key("acme")
    auth = ApiGatewayAuthenticator(keys, clock=clock)
    assert auth.tenant_for(None, issued.record.key_id) == Tenant("acme")
    assert auth.tenant_for(None, "unknown-id") == Tenant("apikey:unknown-id")
    service.revoke_key(issued.record.key_id)
    assert auth.tenant_for(None, issued.record.key_id) is None


async def test_model_access_follows_the_allow_list(
    service: TenantService, keys: SqliteKeyStore, tmp_path: Path
) -> None:
    from lockgate.api.errors import GatewayError

    service.create_tenant("acme", models=["cheap"])
    directory = TenantDirectory(SqliteTenantStore(tmp_path / "t.db"), keys)
    await directory.check_model("acme", "cheap")
    await directory.check_model("acme", "auto")
    await directory.check_model("unknown-tenant", "smart")
    with pytest.raises(GatewayError) as refused:
        await directory.check_model("acme", "smart")
    assert refused.value.status == 403 and "cheap" in refused.value.message
