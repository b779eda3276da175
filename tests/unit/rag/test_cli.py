"""The RAG commands as `lockgate` runs them, over the test fixture's stores."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from lockgate.rag import wiring
from lockgate.rag.cli import add_commands

from tests.unit.rag.conftest import Rag


def run(rag: Rag, argv: list[str]) -> int:
    @asynccontextmanager
    async def open_rag(args: argparse.Namespace) -> AsyncIterator[wiring.RagComponents]:
        yield wiring.assemble(rag.documents, rag.text, rag.vectors, rag.embedder)

    parser = argparse.ArgumentParser(prog="lockgate")
    add_commands(parser.add_subparsers(dest="command", required=True), open_rag)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def test_ingest_reports_what_happened_and_fails_on_bad_files(
    rag: Rag, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.md").write_text("# A\n\nAlpha.")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4 nope")
    code = run(rag, ["ingest", str(tmp_path), "--collection", "kb", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith("kb: 1 failed, 1 indexed; 1 chunks written; version ")
    assert "b.pdf: unreadable PDF" in err
    assert run(rag, ["ingest", str(tmp_path / "a.md"), "--collection", "kb", "--quiet"]) == 0
    assert "1 unchanged; 0 chunks written" in capsys.readouterr().out


def test_list_and_delete(rag: Rag, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# Alpha\n\nAlpha text.")
    run(rag, ["ingest", str(doc), "--collection", "kb", "--tenant", "acme", "--quiet"])
    capsys.readouterr()
    run(rag, ["collections", "--tenant", "acme"])
    assert capsys.readouterr().out.startswith("kb\t1 documents\t1 chunks\t0 failed\tversion ")
    run(rag, ["documents", "--collection", "kb", "--tenant", "acme"])
    assert capsys.readouterr().out.startswith("ready\t1 chunks\tAlpha\tfile://")
    assert run(rag, ["delete", str(doc), "--collection", "kb", "--tenant", "acme"]) == 0
    assert run(rag, ["delete", "--collection", "kb", "--tenant", "acme"]) == 2
    assert run(rag, ["ingest", str(tmp_path / "nope"), "--collection", "kb"]) == 2
