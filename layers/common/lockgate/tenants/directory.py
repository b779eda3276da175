"""Tenant and key records as the request path needs them: read through short-lived caches.

Limits and model access are checked on every request; reading them from the store each time
would double the store traffic. A change made by an administrator takes effect within `ttl_s`.

Authentication is remembered for a second (`RecentCallers`): a key store read per request
would be a trip to the store pool (or DynamoDB) for an answer that almost never changes. A key
revoked through this process stops working at once (the tenant service tells the cache); one
revoked by another process (the CLI, another instance) or expiring stops within `AUTH_TTL_S`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast

from lockgate.errors import GatewayError
from lockgate.stores.offload import SharedReads, offload
from lockgate.tenants.keys import Tenant, hash_key
from lockgate.tenants.models import ApiKeyRecord, TenantRecord
from lockgate.tenants.ports import ApiKeyStore, TenantStore
from lockgate.tenants.tiers import allowed_models

T = TypeVar("T")

AUTH_TTL_S = 1.0


class RecentCallers:
    """Tenants of keys that authenticated in the last `ttl_s`, by key hash (never the key).
    Only successes are kept: a new key works at once, and unknown keys are always checked."""

    def __init__(
        self,
        *,
        ttl_s: float = AUTH_TTL_S,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, Tenant]] = {}

    def get(self, api_key: str | None, gateway_key_id: str | None) -> Tenant | None:
        hit = self._seen.get(_caller(api_key, gateway_key_id))
        if hit is None or hit[0] <= self._clock():
            return None
        return hit[1]

    def put(self, api_key: str | None, gateway_key_id: str | None, tenant: Tenant) -> None:
        if len(self._seen) >= self._max:
            self._seen.clear()
        self._seen[_caller(api_key, gateway_key_id)] = (self._clock() + self._ttl, tenant)

    def forget(self) -> None:
        self._seen.clear()


def _caller(api_key: str | None, gateway_key_id: str | None) -> tuple[str, str]:
    return (hash_key(api_key) if api_key else "", gateway_key_id or "")


class TenantDirectory:
    def __init__(
        self,
        tenants: TenantStore,
        keys: ApiKeyStore,
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenants = tenants
        self._keys = keys
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._reading: SharedReads[object] = SharedReads()

    def tenant(self, tenant_id: str) -> TenantRecord | None:
        return self._cached(("t", tenant_id), lambda: self._tenants.get_tenant(tenant_id))

    def key(self, key_id: str | None) -> ApiKeyRecord | None:
        if key_id is None:
            return None
        return self._cached(("k", key_id), lambda: self._keys.get_key(key_id))

    async def atenant(self, tenant_id: str) -> TenantRecord | None:
        """`tenant` for the event loop: from memory when fresh, else off the loop."""
        return await self._afetch(("t", tenant_id), lambda: self.tenant(tenant_id))

    async def akey(self, key_id: str | None) -> ApiKeyRecord | None:
        if key_id is None:
            return None
        return await self._afetch(("k", key_id), lambda: self.key(key_id))

    async def check_model(self, tenant_id: str, alias: str) -> None:
        """Refuses (403) an alias outside the tenant's tier or allow-list; `auto` is always
        allowed, and capped by `max_routing_tier` instead."""
        if alias == "auto":
            return
        allowed = allowed_models(await self.atenant(tenant_id))
        if allowed and alias not in allowed:
            raise GatewayError(
                403,
                f"Your plan does not include the model {alias!r}. "
                f"Available to you: {', '.join(allowed)}.",
                type="permission_error",
                param="model",
                code="model_not_allowed",
            )

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    async def _afetch(self, key: tuple[str, str], load: Callable[[], T | None]) -> T | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]  # type: ignore[return-value]
        return cast("T | None", await self._reading.read(key, lambda: offload(load)))

    def _cached(self, key: tuple[str, str], load: Callable[[], T | None]) -> T | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[return-value]
        value = load()
        with self._lock:
            self._cache[key] = (now + self._ttl, value)
        return value
