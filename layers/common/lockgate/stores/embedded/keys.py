"""API key records in SQLite: looked up by hash, listed per tenant, revoked by id.

Only the SHA-256 of a key is stored. The lookup is an indexed read on the hash; the stored hash
is then compared in constant time before the key counts as found.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lockgate.stores.embedded.sqlite import connect
from lockgate.tenants.keys import Tenant, generate_key_id, same_hash
from lockgate.tenants.models import ApiKeyRecord, RateLimits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID
"""

# Columns added after the first release; an older database gains them on open.
_ADDED = {
    "key_id": "TEXT",
    "name": "TEXT NOT NULL DEFAULT ''",
    "expires_at": "REAL",
    "limits": "TEXT",
}

_COLUMNS = "key_id, tenant_id, key_hash, name, created_at, expires_at, revoked_at, limits"


class SqliteKeyStore:
    """`KeyStore` (authentication) and `ApiKeyStore` (administration) over one table."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()
        self._clock = clock
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(_SCHEMA)
                have = {row[1] for row in self._db.execute("PRAGMA table_info(api_keys)")}
                for column, kind in _ADDED.items():
                    if column not in have:
                        self._db.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {kind}")
                self._db.execute(
                    "UPDATE api_keys SET key_id = 'key_' || substr(key_hash, 1, 16) "
                    "WHERE key_id IS NULL"
                )
                self._db.execute(
                    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_by_id ON api_keys (key_id)"
                )
                self._db.execute(
                    "CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant_id)"
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # KeyStore: the authentication path.

    def tenant_for(self, key_hash: str) -> Tenant | None:
        record = self.key_by_hash(key_hash)
        if record is None or not same_hash(record.key_hash, key_hash):
            return None
        if not record.active(self._clock()):
            return None
        return Tenant(record.tenant_id, record.key_id)

    def add(self, key_hash: str, tenant: Tenant, *, name: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (key_hash, tenant_id, created_at, key_id, name) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO UPDATE SET name = excluded.name "
                "WHERE api_keys.name = '' AND api_keys.tenant_id = excluded.tenant_id",
                (key_hash, tenant.id, self._clock(), generate_key_id(), name),
            )

    def count(self) -> int:
        """Keys that still work (neither revoked nor expired)."""
        now = self._clock()
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM api_keys WHERE (revoked_at IS NULL OR revoked_at > ?) "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (now, now),
            ).fetchone()
        return int(row[0])

    # ApiKeyStore: administration.

    def put_key(self, record: ApiKeyRecord) -> None:
        limits = record.limits.model_dump_json() if record.limits else None
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.tenant_id,
                        record.key_hash,
                        record.name,
                        record.created_at,
                        record.expires_at,
                        record.revoked_at,
                        limits,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"key {record.key_id} already exists") from None

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return self._one("key_hash = ?", key_hash)

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._one("key_id = ?", key_id)

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at, key_id",
                (tenant_id,),
            ).fetchall()
        return [_record(row) for row in rows]

    def revoke_key(self, key_id: str, at: float) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(MIN(revoked_at, ?), ?) WHERE key_id = ?",
                (at, at, key_id),
            )
        return cursor.rowcount > 0

    def close(self) -> None:
        self._db.close()

    def _one(self, where: str, value: str) -> ApiKeyRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE {where}", (value,)
            ).fetchone()
        return _record(row) if row else None


def _record(row: tuple[object, ...]) -> ApiKeyRecord:
    key_id, tenant_id, key_hash, name, created, expires, revoked, limits = row
    return ApiKeyRecord(
        key_id=str(key_id),
        tenant_id=str(tenant_id),
        key_hash=str(key_hash),
        name=str(name or ""),
        created_at=float(created),  # type: ignore[arg-type]
        expires_at=None if expires is None else float(expires),  # type: ignore[arg-type]
        revoked_at=None if revoked is None else float(revoked),  # type: ignore[arg-type]
        limits=RateLimits.model_validate_json(str(limits)) if limits else None,
    )
