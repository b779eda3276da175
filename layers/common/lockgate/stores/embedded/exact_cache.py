"""The exact cache in SQLite: one row per key, TTL checked on every read, expired rows swept.

The keys stored are also held in memory, so a miss (most lookups) is answered on the event loop
without touching SQLite; hits, writes and purges run in the store pool, because even a
primary-key read can wait on the disk or on a checkpoint when the machine is busy (seen at over
100 ms). Rows written by another process are not in this process's set: they are misses here,
never wrong answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from lockgate.cache.ports import CacheEntry
from lockgate.stores.embedded.sqlite import connect
from lockgate.stores.offload import offload

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exact_cache (
    key        TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    alias      TEXT NOT NULL,
    value      BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS exact_cache_scope ON exact_cache (tenant, alias);
CREATE INDEX IF NOT EXISTS exact_cache_expiry ON exact_cache (expires_at);
"""

# A write replaces the stored entry only when it lives at least as long: a slow request that
# finishes after a newer one must not put its older answer back in front.
_PUT = """
INSERT INTO exact_cache (key, tenant, alias, value, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    tenant = excluded.tenant, alias = excluded.alias,
    value = excluded.value, expires_at = excluded.expires_at
WHERE excluded.expires_at >= exact_cache.expires_at OR exact_cache.expires_at <= ?
"""


class SqliteExactCache:
    """`ExactCache` over a SQLite file (or `:memory:`).

    `sweep_every` seconds at most, a write also deletes the rows that have expired, so the file
    does not grow with answers nobody can be served any more.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        sweep_every: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = connect(path, timeout=5.0)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._clock = clock
        self._sweep_every = sweep_every
        self._last_sweep = clock()
        self._keys = {
            str(row[0])
            for row in self._db.execute(
                "SELECT key FROM exact_cache WHERE expires_at > ?", (clock(),)
            )
        }

    async def get(self, key: str) -> CacheEntry | None:
        if key not in self._keys:
            return None
        return await offload(self._get, key)

    def _get(self, key: str) -> CacheEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT tenant, alias, value, expires_at FROM exact_cache WHERE key = ?", (key,)
            ).fetchone()
        if row is None or row[3] <= self._clock():
            return None
        return CacheEntry(
            key=key, tenant=row[0], alias=row[1], value=bytes(row[2]), expires_at=row[3]
        )

    async def put(self, entry: CacheEntry) -> None:
        _check(entry)
        await offload(self._put, entry)

    async def purge(self, tenant: str, alias: str | None) -> int:
        return await offload(self._purge, tenant, alias)

    def sweep(self) -> int:
        """Deletes expired rows now; returns how many."""
        now = self._clock()
        with self._lock:
            gone = self._db.execute(
                "DELETE FROM exact_cache WHERE expires_at <= ? RETURNING key", (now,)
            ).fetchall()
            self._last_sweep = now
        self._keys.difference_update(str(row[0]) for row in gone)
        return len(gone)

    def count(self) -> int:
        """Rows stored, expired or not (what the file holds)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM exact_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _put(self, entry: CacheEntry) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute(
                _PUT,
                (entry.key, entry.tenant, entry.alias, entry.value, entry.expires_at, now),
            )
            self._keys.add(entry.key)
        if now - self._last_sweep >= self._sweep_every:
            self.sweep()

    def _purge(self, tenant: str, alias: str | None) -> int:
        with self._lock:
            if alias is None:
                gone = self._db.execute(
                    "DELETE FROM exact_cache WHERE tenant = ? RETURNING key", (tenant,)
                ).fetchall()
            else:
                gone = self._db.execute(
                    "DELETE FROM exact_cache WHERE tenant = ? AND alias = ? RETURNING key",
                    (tenant, alias),
                ).fetchall()
            self._keys.difference_update(str(row[0]) for row in gone)
        return len(gone)


def _check(entry: CacheEntry) -> None:
    """Rejects entries that could not be scoped or expired correctly."""
    if not entry.key or not entry.tenant or not entry.alias:
        raise ValueError("a cache entry needs a key, a tenant and an alias")
    if not isinstance(entry.value, bytes | bytearray | memoryview):
        raise TypeError(f"a cache entry's value must be bytes, not {type(entry.value).__name__}")
