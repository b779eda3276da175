"""The SQLite connection every embedded store opens."""

from __future__ import annotations

import os
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
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_file(path)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(f"PRAGMA busy_timeout={round(timeout * 1000)}")
    if isinstance(path, Path):
        for companion in ("-wal", "-shm"):
            _private_file(path.with_name(path.name + companion), create=False)
    return db


def private_dir(path: Path) -> None:
    """The data directory holds key hashes, prompts, answers and documents: its owner's only
    (created so, and tightened if an older install left it readable by others)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _private_file(path: Path, *, create: bool = True) -> None:
    """Created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the same
    mode), and tightened when it already exists."""
    if create:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if path.exists():
        os.chmod(path, 0o600)
