"""Authenticators: the one place a caller becomes a tenant.

Locally the gateway checks keys itself; behind API Gateway the key has already been checked
against a usage plan, and the gateway trusts the key id API Gateway reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from lockgate.stores.ports import KeyStore
from lockgate.tenants.keys import Tenant, hash_key
from lockgate.tenants.ports import ApiKeyStore


class Authenticator(Protocol):
    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        """`api_key` is what the caller sent; `gateway_key_id` is the API Gateway key id from
        the invocation's request context, present only behind API Gateway."""
        ...


class KeyStoreAuthenticator:
    """Unknown, revoked and expired keys all authenticate as nobody (the store checks)."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        return self._keys.tenant_for(hash_key(api_key)) if api_key else None


class ApiGatewayAuthenticator:
    """Trusts API Gateway's key id. With a key store, the id names a key created by
    `TenantService` (whose key ids are API Gateway's), so the caller becomes that key's tenant,
    and a revoked or expired key is refused even before API Gateway's own cache notices.
    Without one, every API Gateway key is its own tenant."""

    def __init__(
        self, keys: ApiKeyStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = keys
        self._clock = clock

    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        if not gateway_key_id:
            return None
        if self._keys is None:
            return Tenant(f"apikey:{gateway_key_id}", gateway_key_id)
        record = self._keys.get_key(gateway_key_id)
        if record is None:
            return Tenant(f"apikey:{gateway_key_id}", gateway_key_id)
        if not record.active(self._clock()):
            return None
        return Tenant(record.tenant_id, record.key_id)
