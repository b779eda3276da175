"""Responses API conversation state in SQLite, zlib-compressed JSON, TTL checked on read.

Writes go to a thread (a commit can wait on the disk); reads stay on the event loop.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import orjson

from lockgate.stores.embedded.sqlite import connect
from lockgate.stores.offload import offload
from lockgate.stores.responses import StoredResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        BLOB NOT NULL,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);
"""


class SqliteResponseStore:
    """`ResponseStore` over a SQLite file; expired rows are swept on writes, at most once per
    `sweep_every` seconds, so the file does not keep conversations nobody can continue."""

    def __init__(
        self,
        path: Path | str,
        *,
        sweep_every: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = connect(path, timeout=5.0)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._clock = clock
        self._sweep_every = sweep_every
        self._last_sweep = clock()

    async def put(
        self, tenant_id: str, response_id: str, record: StoredResponse, ttl_s: float
    ) -> None:
        body = zlib.compress(orjson.dumps(record), 6)
        await offload(self._put, tenant_id, response_id, body, self._clock() + ttl_s)

    async def get(self, tenant_id: str, response_id: str) -> StoredResponse | None:
        """In the store pool like every read that touches the disk: under load a primary-key
        lookup can wait on I/O for longer than the loop may stall."""
        row = await offload(self._get, tenant_id, response_id)
        if row is None or row[1] <= self._clock():
            return None
        record: StoredResponse = orjson.loads(zlib.decompress(row[0]))
        return record

    async def delete(self, tenant_id: str, response_id: str) -> bool:
        return await offload(self._delete, tenant_id, response_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _put(self, tenant_id: str, response_id: str, body: bytes, expires_at: float) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (tenant, id, body, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (tenant_id, response_id, body, expires_at),
            )
            if now - self._last_sweep >= self._sweep_every:
                self._last_sweep = now
                self._db.execute("DELETE FROM responses WHERE expires_at <= ?", (now,))

    def _get(self, tenant_id: str, response_id: str) -> tuple[bytes, float] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body, expires_at FROM responses WHERE tenant = ? AND id = ?",
                (tenant_id, response_id),
            ).fetchone()
        return None if row is None else (bytes(row[0]), float(row[1]))

    def _delete(self, tenant_id: str, response_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM responses WHERE tenant = ? AND id = ? AND expires_at > ?",
                (tenant_id, response_id, self._clock()),
            )
        return cursor.rowcount > 0
