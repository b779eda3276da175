"""Ports for tenant and key records; the embedded adapter is SQLite, the AWS one DynamoDB."""

from __future__ import annotations

from typing import Protocol

from lockgate.tenants.models import ApiKeyRecord, TenantRecord


class TenantStore(Protocol):
    def put_tenant(self, tenant: TenantRecord) -> None:
        """Creates or replaces the tenant."""
        ...

    def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...

    def list_tenants(self) -> list[TenantRecord]: ...


class ApiKeyStore(Protocol):
    def put_key(self, record: ApiKeyRecord) -> None:
        """Stores a new key; a second key with the same hash or id is refused (ValueError)."""
        ...

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; callers check `active`."""
        ...

    def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]: ...

    def revoke_key(self, key_id: str, at: float) -> bool:
        """Marks the key revoked from `at`; False when there is no such key."""
        ...


class GatewayKeyRegistrar(Protocol):
    """Mirrors keys into a front door that checks them itself (API Gateway usage plans)."""

    def register(self, key: str, *, tenant_id: str, tier: str, name: str) -> str:
        """Creates the key there, attached to the tier's plan; returns its id there."""
        ...

    def move(self, gateway_key_id: str, *, from_tier: str, to_tier: str) -> None: ...

    def disable(self, gateway_key_id: str) -> None: ...
