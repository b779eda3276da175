"""Authenticators: the one place a caller becomes a tenant.

Locally the gateway checks keys itself; behind API Gateway the key has already been checked
against a usage plan, and the gateway trusts the key id API Gateway reports.
"""

from __future__ import annotations

from typing import Protocol

from lockgate.stores.ports import KeyStore
from lockgate.tenants.keys import Tenant, hash_key


class Authenticator(Protocol):
    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        """`api_key` is what the caller sent; `gateway_key_id` is the API Gateway key id from
        the invocation's request context, present only behind API Gateway."""
        ...


class KeyStoreAuthenticator:
    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        return self._keys.tenant_for(hash_key(api_key)) if api_key else None


class ApiGatewayAuthenticator:
    def tenant_for(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        return Tenant(f"apikey:{gateway_key_id}") if gateway_key_id else None
