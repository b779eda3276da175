"""The data directory and its databases are the owner's only (issue 9.8): key hashes, prompts,
answers and documents live there. Real files, real SQLite, the real composition root."""

from __future__ import annotations

import stat
from pathlib import Path

from lockgate.bootstrap import build
from lockgate.settings import Settings
from lockgate.stores.embedded.sqlite import connect


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_install_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    container = build(Settings(data_dir=data_dir, api_key="k" * 24))
    files = sorted(data_dir.glob("*.db*"))
    assert {f.name for f in files} >= {"lockgate.db", "cache.db", "rag.db", "rag.db-wal"}
    assert _mode(data_dir) == 0o700
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    for close in container.stores.closers:
        close()


def test_an_older_install_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    database = data_dir / "lockgate.db"
    connect(database).close()
    database.chmod(0o644)
    connect(database).close()
    container = build(Settings(data_dir=data_dir))
    assert _mode(data_dir) == 0o700
    assert _mode(database) == 0o600
    for close in container.stores.closers:
        close()
