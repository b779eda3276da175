"""Tenant and key administration, shared by the CLI and the admin routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from lockgate.stores.ports import KeyStore
from lockgate.tenants.keys import Tenant, generate_key, generate_key_id, hash_key
from lockgate.tenants.models import ApiKeyRecord, Budget, RateLimits, TenantRecord
from lockgate.tenants.ports import ApiKeyStore, GatewayKeyRegistrar, TenantStore
from lockgate.tenants.tiers import UNLIMITED, check_tier_name

DEFAULT_TENANT = Tenant("default")
INSTALL_KEY = "LOCKGATE_API_KEY"
"""The name of the key configured by `LOCKGATE_API_KEY`."""
FIRST_START_KEY = "first start"
"""The name of the key printed when an install starts with no key at all."""


class TenantError(ValueError):
    """A refused administrative change; the message is safe to show the administrator."""


class NotFound(TenantError):
    pass


class Conflict(TenantError):
    pass


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key. `key` exists only here: it is stored hashed and cannot be shown again."""

    key: str
    record: ApiKeyRecord


_UPDATABLE = {"name", "tier", "models", "limits", "key_limits", "budget"}


class TenantService:
    def __init__(
        self,
        tenants: TenantStore,
        keys: ApiKeyStore,
        *,
        gateway_keys: GatewayKeyRegistrar | None = None,
        on_revoke: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tenants = tenants
        self._keys = keys
        self._gateway = gateway_keys
        self._on_revoke = on_revoke
        self._clock = clock

    def create_tenant(
        self,
        tenant_id: str,
        *,
        name: str = "",
        tier: str = "standard",
        models: tuple[str, ...] | list[str] = (),
        limits: RateLimits | None = None,
        key_limits: RateLimits | None = None,
        budget: Budget | None = None,
    ) -> TenantRecord:
        record = _validated(
            id=tenant_id,
            name=name,
            tier=tier,
            models=tuple(models),
            limits=limits,
            key_limits=key_limits,
            budget=budget or Budget(),
            created_at=self._clock(),
        )
        if self._tenants.get_tenant(record.id) is not None:
            raise Conflict(f"tenant {tenant_id!r} already exists")
        self._tenants.put_tenant(record)
        return record

    def list_tenants(self) -> list[TenantRecord]:
        return self._tenants.list_tenants()

    def get_tenant(self, tenant_id: str) -> TenantRecord:
        record = self._tenants.get_tenant(tenant_id)
        if record is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return record

    def update_tenant(self, tenant_id: str, **changes: Any) -> TenantRecord:
        """Changes the given fields; a tier change moves the tenant's keys to the tier's plan."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TenantError(f"cannot update {', '.join(sorted(unknown))}")
        current = self.get_tenant(tenant_id)
        if "models" in changes:
            changes["models"] = tuple(changes["models"])
        updated = _validated(**{**current.model_dump(), **changes})
        if self._gateway is not None and updated.tier != current.tier:
            for key in self._keys.list_keys(tenant_id):
                if key.active(self._clock()):
                    self._gateway.move(key.key_id, from_tier=current.tier, to_tier=updated.tier)
        self._tenants.put_tenant(updated)
        return updated

    def create_key(
        self,
        tenant_id: str,
        *,
        name: str = "",
        expires_in_s: float | None = None,
        limits: RateLimits | None = None,
    ) -> IssuedKey:
        tenant = self.get_tenant(tenant_id)
        if expires_in_s is not None and expires_in_s <= 0:
            raise TenantError("expires_in_s must be positive")
        key = generate_key()
        now = self._clock()
        key_id = generate_key_id()
        if self._gateway is not None:
            key_id = self._gateway.register(key, tenant_id=tenant.id, tier=tenant.tier, name=name)
        record = ApiKeyRecord(
            key_id=key_id,
            tenant_id=tenant.id,
            key_hash=hash_key(key),
            name=name,
            created_at=now,
            expires_at=None if expires_in_s is None else now + expires_in_s,
            limits=limits,
        )
        self._keys.put_key(record)
        return IssuedKey(key, record)

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        self.get_tenant(tenant_id)
        return self._keys.list_keys(tenant_id)

    def revoke_key(self, key_id: str, *, tenant_id: str | None = None) -> ApiKeyRecord:
        """Revokes now. With `tenant_id`, a key of another tenant is reported as not found."""
        record = self._keys.get_key(key_id)
        if record is None or (tenant_id is not None and record.tenant_id != tenant_id):
            raise NotFound(f"no key {key_id!r}")
        self._keys.revoke_key(key_id, self._clock())
        if self._on_revoke is not None:
            self._on_revoke()  # callers remembered with this key are checked again
        if self._gateway is not None:
            self._gateway.disable(key_id)
        revoked = self._keys.get_key(key_id)
        assert revoked is not None
        return revoked


def _validated(**fields: Any) -> TenantRecord:
    try:
        check_tier_name(str(fields.get("tier")))
        return TenantRecord.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TenantError(f"{where}: {first['msg']}") from None
    except ValueError as exc:
        raise TenantError(str(exc)) from None


class InstallKeys(KeyStore, ApiKeyStore, Protocol):
    """What `install_key` needs: registering a key it did not generate, and the key records."""


def install_key(
    tenants: TenantStore,
    keys: InstallKeys,
    key: str,
    *,
    name: str = INSTALL_KEY,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Makes `key` the install's key called `name`, held by tenant `default`, and revokes the
    keys it replaces: earlier ones of that name (a rotated `LOCKGATE_API_KEY` must stop
    working). Returns the revoked key ids.

    `default` gets a tenant record (tier `unlimited`, as before it had one), so its keys are
    listed and revoked like any tenant's. A database from before key names is recognised by
    `default` having no record yet: its unnamed `default` keys were install keys, and only the
    one matching `key` survives (and takes the name)."""
    now = clock()
    earlier_release = tenants.get_tenant(DEFAULT_TENANT.id) is None
    if earlier_release:
        tenants.put_tenant(
            TenantRecord(
                id=DEFAULT_TENANT.id, name="this install", tier=UNLIMITED.name, created_at=now
            )
        )
    key_hash = hash_key(key)
    keys.add(key_hash, DEFAULT_TENANT, name=name)
    revoked = []
    for record in keys.list_keys(DEFAULT_TENANT.id):
        replaced = record.name == name or (earlier_release and not record.name)
        if replaced and record.key_hash != key_hash and record.active(now):
            keys.revoke_key(record.key_id, now)
            revoked.append(record.key_id)
    return revoked
