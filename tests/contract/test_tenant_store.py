"""One behaviour for every tenant/key store: SQLite (real, on disk) and DynamoDB through boto3
against moto (emulated). Also the API Gateway key registrar against moto's API Gateway
(emulated: moto stores keys and usage-plan membership but enforces no plan)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest
from lockgate.stores.aws.api_keys import ApiGatewayKeys
from lockgate.stores.aws.tenants import DynamoTenantStore
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.tenants import SqliteTenantStore
from lockgate.tenants.auth import ApiGatewayAuthenticator, KeyStoreAuthenticator
from lockgate.tenants.keys import Tenant, hash_key
from lockgate.tenants.models import ApiKeyRecord, Budget, RateLimits, TenantRecord
from lockgate.tenants.service import TenantService, install_key
from moto import mock_aws


class Store(Protocol):
    def put_tenant(self, tenant: TenantRecord) -> None: ...
    def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...
    def list_tenants(self) -> list[TenantRecord]: ...
    def put_key(self, record: ApiKeyRecord) -> None: ...
    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...
    def get_key(self, key_id: str) -> ApiKeyRecord | None: ...
    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]: ...
    def revoke_key(self, key_id: str, at: float) -> bool: ...
    def tenant_for(self, key_hash: str) -> Tenant | None: ...
    def add(self, key_hash: str, tenant: Tenant) -> None: ...
    def count(self) -> int: ...


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def create_tenant_table(client: Any, name: str) -> None:
    """The table as `infra/components/tenants.py` declares it."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "dynamodb-moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Store]:
    if request.param == "sqlite":
        yield _Sqlite(tmp_path / "t.db", clock)
    else:
        client = request.getfixturevalue("aws")
        table = f"tenants-{uuid.uuid4().hex[:8]}"
        create_tenant_table(client, table)
        yield DynamoTenantStore(table, dynamodb=client, clock=clock)


class _Sqlite(SqliteKeyStore, SqliteTenantStore):  # type: ignore[misc]
    """Both SQLite stores on one file, as bootstrap opens them."""

    def __init__(self, path: Path, clock: Clock) -> None:
        SqliteKeyStore.__init__(self, path, clock=clock)
        self._tenants = SqliteTenantStore(path)

    def put_tenant(self, tenant: TenantRecord) -> None:
        self._tenants.put_tenant(tenant)

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        return self._tenants.get_tenant(tenant_id)

    def list_tenants(self) -> list[TenantRecord]:
        return self._tenants.list_tenants()


def test_tenants_round_trip_and_list_in_order(store: Store) -> None:
    acme = TenantRecord(
        id="acme",
        tier="free",
        models=("cheap",),
        limits=RateLimits(requests_per_minute=5),
        budget=Budget(monthly_usd=2.5, on_exhausted="step_down"),
    )
    store.put_tenant(acme)
    store.put_tenant(TenantRecord(id="globex"))
    assert store.get_tenant("acme") == acme
    assert store.get_tenant("nobody") is None
    assert [t.id for t in store.list_tenants()] == ["acme", "globex"]
    store.put_tenant(acme.model_copy(update={"tier": "standard"}))
    assert store.get_tenant("acme").tier == "standard"  # type: ignore[union-attr]


def test_key_life_cycle(store: Store, clock: Clock) -> None:
    service = TenantService(store, store, clock=clock)
    service.create_tenant("acme")
    service.create_tenant("globex")
    first = service.create_key("acme", name="ci")
    clock.now += 1
    second = service.create_key("acme", expires_in_s=60)
    other = service.create_key("globex")
    auth = KeyStoreAuthenticator(store)

    assert auth.tenant_for(first.key, None) == Tenant("acme")
    assert store.key_by_hash(hash_key(first.key)) == first.record
    assert [k.key_id for k in store.list_keys("acme")] == [
        first.record.key_id,
        second.record.key_id,
    ]
    assert [k.key_id for k in store.list_keys("globex")] == [other.record.key_id]
    assert store.count() == 3

    service.revoke_key(first.record.key_id)
    assert auth.tenant_for(first.key, None) is None
    assert store.get_key(first.record.key_id).revoked_at == clock.now  # type: ignore[union-attr]
    clock.now += 60
    assert auth.tenant_for(second.key, None) is None
    assert auth.tenant_for(other.key, None) == Tenant("globex")
    assert store.count() == 1
    assert store.revoke_key("key_missing", clock.now) is False


def test_a_duplicate_key_is_refused(store: Store) -> None:
    record = ApiKeyRecord(key_id="key_a", tenant_id="acme", key_hash=hash_key("lg-x"))
    store.put_key(record)
    with pytest.raises(ValueError, match="already exists"):
        store.put_key(record)
    store.add(hash_key("lg-x"), Tenant("acme"))  # the install key path: a no-op when present
    assert len(store.list_keys("acme")) == 1


def test_api_gateway_keys_join_their_tier_plan(tmp_path: Path, clock: Clock) -> None:
    with mock_aws():
        api = boto3.client("apigateway", region_name="us-east-1")
        plans = {
            tier: api.create_usage_plan(name=f"lockgate-{tier}")["id"]
            for tier in ("free", "standard")
        }
        store = _Sqlite(tmp_path / "t.db", clock)
        service = TenantService(
            store, store, gateway_keys=ApiGatewayKeys(plans, apigateway=api), clock=clock
        )
        service.create_tenant("acme", tier="free")
        issued = service.create_key("acme", name="ci")

        gateway_key = api.get_api_key(apiKey=issued.record.key_id, includeValue=True)
        assert gateway_key["value"] == issued.key and gateway_key["enabled"] is True
        members = api.get_usage_plan_keys(usagePlanId=plans["free"])["items"]
        assert [m["id"] for m in members] == [issued.record.key_id]

        service.update_tenant("acme", tier="standard")
        assert api.get_usage_plan_keys(usagePlanId=plans["free"])["items"] == []
        moved = api.get_usage_plan_keys(usagePlanId=plans["standard"])["items"]
        assert [m["id"] for m in moved] == [issued.record.key_id]

        auth = ApiGatewayAuthenticator(store, clock=clock)
        assert auth.tenant_for(None, issued.record.key_id) == Tenant("acme")
        service.revoke_key(issued.record.key_id)
        assert api.get_api_key(apiKey=issued.record.key_id)["enabled"] is False
        assert auth.tenant_for(None, issued.record.key_id) is None

        service.create_tenant("initech", tier="enterprise")
        with pytest.raises(ValueError, match="no usage plan for tier 'enterprise'"):
            service.create_key("initech")


def test_a_rotated_install_key_is_revoked_in_every_store(store: Store, clock: Clock) -> None:
    """`LOCKGATE_API_KEY` changed between two starts, on a database from before key names."""
    store.add(hash_key("lg-install-old-0123456789"), Tenant("default"))  # an earlier release
    store.add(hash_key("lg-someone-else-0123456789"), Tenant("acme"))
    clock.now += 1
    assert install_key(store, store, "lg-install-old-0123456789", clock=clock) == []
    (claimed,) = store.list_keys("default")
    assert claimed.name == "LOCKGATE_API_KEY"  # the earlier record took the name
    store.add(hash_key("lg-someone-else-0123456789"), Tenant("default"), name="x")
    assert store.tenant_for(hash_key("lg-someone-else-0123456789")) == Tenant("acme")

    clock.now += 1
    (revoked,) = install_key(store, store, "lg-install-new-0123456789", clock=clock)
    assert revoked == claimed.key_id
    assert store.tenant_for(hash_key("lg-install-old-0123456789")) is None
    assert store.tenant_for(hash_key("lg-install-new-0123456789")) == Tenant("default")
    assert store.get_tenant("default") is not None
