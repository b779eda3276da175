"""`lockgate tenants|keys` through `add_commands`, on a real SQLite data directory."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.tenants.auth import KeyStoreAuthenticator
from lockgate.tenants.cli import add_commands, duration
from lockgate.tenants.keys import Tenant


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lockgate")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


def test_tenant_and_key_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCKGATE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LOCKGATE_TENANT_TABLE", raising=False)
    assert run("tenants", "create", "acme", "--tier", "free", "--budget-tokens", "5000") == 0
    assert run("tenants", "update", "acme", "--rpm", "7", "--models", "cheap,fast") == 0
    out = capsys.readouterr().out
    assert '"requests_per_minute": 7' in out and '"monthly_tokens": 5000' in out
    assert run("tenants", "list") == 0
    assert re.search(r"acme\s+free\s+cheap,fast\s+5000 tokens", capsys.readouterr().out)

    assert run("keys", "create", "acme", "--name", "ci", "--expires-in", "30d") == 0
    out = capsys.readouterr().out
    key = re.search(r"(lg-\S+)", out).group(1)  # type: ignore[union-attr]
    key_id = re.search(r"key id:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    auth = KeyStoreAuthenticator(SqliteKeyStore(tmp_path / "lockgate.db"))
    assert auth.tenant_for(key, None) == Tenant("acme")

    assert run("keys", "list", "acme") == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "active" in listing and key not in listing
    assert run("keys", "revoke", key_id) == 0
    assert auth.tenant_for(key, None) is None

    assert run("tenants", "create", "acme") == 1
    assert "already exists" in capsys.readouterr().err
    assert run("keys", "create", "nobody") == 1


def test_durations() -> None:
    assert duration("90") == 90 and duration("12h") == 43200 and duration("2w") == 1209600
    with pytest.raises(argparse.ArgumentTypeError):
        duration("soon")
