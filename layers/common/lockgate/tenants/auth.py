"""Authenticators: the one place a caller becomes a tenant.

Locally the gateway checks keys itself; behind API Gateway the key has already been checked
against a usage plan, and the gateway trusts the key id API Gateway reports, as the Lambda
integration delivers it (`RequestContextGuard` keeps a client from posing as that report).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, Protocol

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


REQUEST_CONTEXT_HEADER = b"x-amzn-request-context"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("lockgate.auth")


class RequestContextGuard:
    """ASGI middleware for the two ways API Gateway's request context reaches the app.

    `lambda-event` (Mangum): the context is the Lambda event's own (`scope["aws.event"]`). API
    Gateway passes client headers through, so an `x-amzn-request-context` header can only be
    the client's: it is always dropped.

    `web-adapter` (Lambda Web Adapter): the adapter serializes the event's context into that
    header, replacing any the client sent (`HeaderMap::insert`), and connects to the app over
    loopback (the app binds 127.0.0.1). The header is trusted only on a loopback connection;
    from anywhere else it is a forgery and is dropped.

    A dropped header leaves the request without an API Gateway identity, so the authenticator
    refuses it (401 in the route's own error envelope) unless the event itself named a key.
    """

    def __init__(self, app: ASGIApp, *, transport: Literal["lambda-event", "web-adapter"]) -> None:
        self.app = app
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._trusted(scope):
            headers = scope.get("headers") or []
            kept = [
                (name, value) for name, value in headers if name.lower() != REQUEST_CONTEXT_HEADER
            ]
            if len(kept) != len(headers):
                client = scope.get("client")
                _log.warning(
                    "request-context header dropped",
                    extra={"transport": self.transport, "peer": client[0] if client else None},
                )
                scope = {**scope, "headers": kept}
        await self.app(scope, receive, send)

    def _trusted(self, scope: Scope) -> bool:
        if self.transport == "lambda-event":
            return False
        client = scope.get("client")
        return client is not None and _is_loopback(str(client[0]))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
