"""The storage ports. Logic depends on these protocols only; the composition root picks the
adapters."""

from __future__ import annotations

from typing import Protocol

from lockgate.tenants.keys import Tenant


class KeyStore(Protocol):
    def tenant_for(self, key_hash: str) -> Tenant | None:
        """The tenant owning a key hash, or None for unknown and revoked keys."""
        ...

    def add(self, key_hash: str, tenant: Tenant) -> None: ...

    def count(self) -> int: ...
