"""The SQLite connection every embedded store opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal


def connect(
    path: Path | str,
    *,
    timeout: float = 30.0,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
) -> sqlite3.Connection:
    """A connection shared by threads (callers serialise with a lock), in WAL mode so readers
    in other processes never wait for a writer, and waiting up to `timeout` seconds for a writer
    rather than failing. A `Path`'s folder is created; a string (":memory:") is used as it is.

    `synchronous=NORMAL` syncs at checkpoints instead of at every commit: in WAL mode the
    database cannot be corrupted by it, and only a power cut can lose the last few commits,
    which for counters and usage is a fair price for not syncing the disk on every request.
    `FULL` syncs at every commit."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(f"PRAGMA busy_timeout={round(timeout * 1000)}")
    return db
