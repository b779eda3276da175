"""Rate-window counters and usage totals in SQLite, safe across threads and processes.

Each acquire is one `BEGIN IMMEDIATE` transaction: it takes SQLite's write lock before reading,
so two processes cannot both read a counter at N-1 and both admit; the read, the limit check
and the increments commit together or not at all.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lockgate.limits.ports import Acquired, Increment, UsageTotals
from lockgate.stores.embedded.sqlite import connect

_COUNTERS = """
CREATE TABLE IF NOT EXISTS rate_counters (
    key        TEXT PRIMARY KEY,
    value      INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""
_SWEEP_EVERY = 1000

_FIELDS = UsageTotals.counted()
_USAGE = f"""
CREATE TABLE IF NOT EXISTS usage_totals (
    tenant_id TEXT NOT NULL,
    period    TEXT NOT NULL,
    dim       TEXT NOT NULL,
    {", ".join(f"{name} REAL NOT NULL DEFAULT 0" for name in _FIELDS)},
    PRIMARY KEY (tenant_id, period, dim)
) WITHOUT ROWID
"""


class _Transactional:
    def __init__(self, path: Path, schema: str) -> None:
        self._db = connect(path)
        self._db.execute(schema)
        self._lock = threading.Lock()

    def _write(self, work: Callable[[sqlite3.Connection], object]) -> object:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def close(self) -> None:
        self._db.close()


class SqliteCounterStore(_Transactional):
    """`CounterStore` in SQLite."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, _COUNTERS)
        self._clock = clock
        self._acquires = 0

    def acquire(self, increments: Sequence[Increment], expires_at: float) -> Acquired:
        keys = [i.key for i in increments]

        def work(db: sqlite3.Connection) -> Acquired:
            values = _read(db, keys)
            for inc in increments:
                if inc.limit is not None and values.get(inc.key, 0) + inc.amount > inc.limit:
                    return Acquired(False, values, inc.key)
            for inc in increments:
                db.execute(
                    "INSERT INTO rate_counters (key, value, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value, "
                    "expires_at = MAX(expires_at, excluded.expires_at)",
                    (inc.key, inc.amount, inc.expires_at or expires_at),
                )
                values[inc.key] = values.get(inc.key, 0) + inc.amount
            return Acquired(True, values)

        result = self._write(work)
        self._acquires += 1
        if self._acquires % _SWEEP_EVERY == 0:
            self.sweep()
        assert isinstance(result, Acquired)
        return result

    def adjust(self, key: str, delta: int, expires_at: float) -> None:
        self._write(
            lambda db: db.execute(
                "INSERT INTO rate_counters (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
                (key, delta, expires_at),
            )
        )

    def values(self, keys: Sequence[str]) -> dict[str, int]:
        with self._lock:
            return _read(self._db, list(keys))

    def sweep(self) -> int:
        """Deletes windows that have ended; returns how many."""
        cursor = self._write(
            lambda db: db.execute(
                "DELETE FROM rate_counters WHERE expires_at < ?", (self._clock(),)
            )
        )
        assert isinstance(cursor, sqlite3.Cursor)
        return cursor.rowcount


def _read(db: sqlite3.Connection, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    marks = ",".join("?" * len(keys))
    rows = db.execute(f"SELECT key, value FROM rate_counters WHERE key IN ({marks})", keys)
    return {str(key): int(value) for key, value in rows}


class SqliteUsageStore(_Transactional):
    """`UsageStore` in SQLite: one row per (tenant, month, dim)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _USAGE)
        known = {row[1] for row in self._db.execute("PRAGMA table_info(usage_totals)")}
        for name in _FIELDS:
            if name not in known:  # a file written before this total existed
                self._db.execute(
                    f"ALTER TABLE usage_totals ADD COLUMN {name} REAL NOT NULL DEFAULT 0"
                )

    def add(self, tenant_id: str, period: str, dims: Sequence[str], totals: UsageTotals) -> None:
        columns = ", ".join(_FIELDS)
        marks = ", ".join("?" * len(_FIELDS))
        updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in _FIELDS)
        values = [getattr(totals, name) for name in _FIELDS]

        def work(db: sqlite3.Connection) -> None:
            for dim in dims:
                db.execute(
                    f"INSERT INTO usage_totals (tenant_id, period, dim, {columns}) "
                    f"VALUES (?, ?, ?, {marks}) "
                    f"ON CONFLICT (tenant_id, period, dim) DO UPDATE SET {updates}",
                    (tenant_id, period, dim, *values),
                )

        self._write(work)

    def totals(self, tenant_id: str, period: str) -> dict[str, UsageTotals]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT dim, {', '.join(_FIELDS)} FROM usage_totals "
                "WHERE tenant_id = ? AND period = ?",
                (tenant_id, period),
            ).fetchall()
        return {str(row[0]): _totals(row[1:]) for row in rows}


def _totals(values: Sequence[object]) -> UsageTotals:
    out = UsageTotals()
    for name, value in zip(_FIELDS, values, strict=True):
        current = getattr(out, name)
        setattr(out, name, type(current)(value))  # type: ignore[call-arg]
    return out
