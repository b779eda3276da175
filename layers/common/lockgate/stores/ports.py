"""The storage ports. Logic depends on these protocols only; the composition root picks the
adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lockgate.embeddings.base import Vectors
from lockgate.tenants.keys import Tenant


class KeyStore(Protocol):
    def tenant_for(self, key_hash: str) -> Tenant | None:
        """The tenant owning a key hash, or None for unknown and revoked keys."""
        ...

    def add(self, key_hash: str, tenant: Tenant, *, name: str = "") -> None:
        """Registers a key made outside the tenant service (the install's own keys). A hash
        already stored is kept; if it has no name yet and is the same tenant's, it takes
        `name` (how keys written before names existed are recognised later)."""
        ...

    def count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """One vector in a namespace (e.g. a tenant's cache scope, or a tenant's collection).

    `payload` is small JSON-able metadata returned with hits; searches never cross namespaces.
    """

    id: str
    namespace: str
    vector: Vectors
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: str
    score: float
    """Plain cosine similarity in [-1, 1], whatever the backend's own scoring."""
    payload: dict[str, Any]


class VectorIndex(Protocol):
    """k-nearest-neighbour search by cosine, filtered to one namespace inside the search."""

    async def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    async def search(self, vector: Vectors, *, namespace: str, k: int) -> list[VectorHit]: ...

    async def delete(self, ids: Sequence[str], *, namespace: str) -> None: ...

    async def delete_namespace(self, namespace_prefix: str) -> int:
        """Removes every record whose namespace starts with the prefix; returns how many."""
        ...
