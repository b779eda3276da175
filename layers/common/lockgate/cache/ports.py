"""The exact-cache port: whole answers stored under a key that covers everything that changes
them. Adapters: SQLite (embedded) and DynamoDB (AWS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class CacheEntry:
    key: str
    tenant: str
    alias: str
    value: bytes
    expires_at: float
    """Epoch seconds; at or after it the entry is a miss on every backend."""


class ExactCache(Protocol):
    async def get(self, key: str) -> CacheEntry | None: ...

    async def put(self, entry: CacheEntry) -> None: ...

    async def purge(self, tenant: str, alias: str | None) -> int:
        """Removes a tenant's entries (one alias's when given); returns how many."""
        ...
