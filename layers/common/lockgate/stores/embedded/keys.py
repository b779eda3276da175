"""API key hashes in SQLite."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from lockgate.tenants.keys import Tenant

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;
"""


class SqliteKeyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def tenant_for(self, key_hash: str) -> Tenant | None:
        with self._lock:
            row = self._db.execute(
                "SELECT tenant_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                (key_hash,),
            ).fetchone()
        return Tenant(row[0]) if row else None

    def add(self, key_hash: str, tenant: Tenant) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO api_keys (key_hash, tenant_id, created_at) VALUES (?, ?, ?)",
                (key_hash, tenant.id, time.time()),
            )

    def count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL"
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()
