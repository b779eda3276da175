"""Tenant and key records as the request path needs them: read through short-lived caches.

Limits and model access are checked on every request; reading them from the store each time
would double the store traffic. A change made by an administrator takes effect within `ttl_s`.

Authentication is remembered for a second (`RecentCallers`): a key store read per request
would be a trip to the store pool (or DynamoDB) for an answer that almost never changes. A key
revoked through this process stops working at once (the tenant service tells the cache); one
revoked by another process (the CLI, another instance) or expiring stops within `AUTH_TTL_S`.

Both caches read a record again once half its time is up, in the background, while the copy
still serves (`SharedReads.refresh`): a busy key or tenant is never read with requests waiting
on it. No copy is served past its time, so the delays above hold as they are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
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
        self._seen: dict[tuple[str, str], tuple[float, float, Tenant]] = {}
        self.generation = 0
        """Counts `forget`s: a read started before one must not put back what it removed."""

    def lookup(self, api_key: str | None, gateway_key_id: str | None) -> tuple[Tenant | None, bool]:
        """The remembered tenant, and whether it is time to read it again."""
        hit = self._seen.get(caller_key(api_key, gateway_key_id))
        if hit is None:
            return None, False
        refresh_at, expires_at, tenant = hit
        now = self._clock()
        if expires_at <= now:
            return None, False
        return tenant, refresh_at <= now

    def put(
        self,
        api_key: str | None,
        gateway_key_id: str | None,
        tenant: Tenant,
        *,
        generation: int | None = None,
    ) -> None:
        """Remembers a success; `generation` is `self.generation` when its read began."""
        if generation is not None and generation != self.generation:
            return
        if len(self._seen) >= self._max:
            self._seen.clear()
        now = self._clock()
        self._seen[caller_key(api_key, gateway_key_id)] = (
            now + self._ttl / 2,
            now + self._ttl,
            tenant,
        )

    def discard(self, api_key: str | None, gateway_key_id: str | None) -> None:
        self._seen.pop(caller_key(api_key, gateway_key_id), None)

    def forget(self) -> None:
        self._seen.clear()
        self.generation += 1


def caller_key(api_key: str | None, gateway_key_id: str | None) -> tuple[str, str]:
    """How a caller is known in memory: the key's hash, never the key."""
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
        self._cache: dict[tuple[str, str], tuple[float, float, object]] = {}
        self._generation = 0
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
        return await self._afetch(("t", tenant_id), lambda: self._tenants.get_tenant(tenant_id))

    async def akey(self, key_id: str | None) -> ApiKeyRecord | None:
        if key_id is None:
            return None
        return await self._afetch(("k", key_id), lambda: self._keys.get_key(key_id))

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
            self._generation += 1

    async def _afetch(self, key: tuple[str, str], read: Callable[[], T | None]) -> T | None:
        def load() -> Awaitable[object]:
            return offload(self._store, key, read)

        hit = self._fresh(key)
        if hit is None:
            return cast("T | None", await self._reading.read(key, load))
        value, due = hit
        if due:
            self._reading.refresh(key, load)
        return cast("T | None", value)

    def _cached(self, key: tuple[str, str], read: Callable[[], T | None]) -> T | None:
        hit = self._fresh(key)
        return cast("T | None", hit[0]) if hit is not None else self._store(key, read)

    def _fresh(self, key: tuple[str, str]) -> tuple[object, bool] | None:
        """The cached value and whether to read it again; None when there is none or it expired."""
        with self._lock:
            hit = self._cache.get(key)
        now = self._clock()
        if hit is None or hit[1] <= now:
            return None
        return hit[2], hit[0] <= now

    def _store(self, key: tuple[str, str], read: Callable[[], T | None]) -> T | None:
        """Reads the store and caches the answer, unless `forget` was called meanwhile."""
        now = self._clock()
        with self._lock:
            generation = self._generation
        value = read()
        with self._lock:
            if generation == self._generation:
                self._cache[key] = (now + self._ttl / 2, now + self._ttl, value)
        return value
