"""`kill -9` in the middle of `lockgate ingest`, at random points, in a bounded loop (issue 9.4):
after each kill no partial document is served, and `repair` leaves no document stuck and no
uncommitted chunk behind; a last run completes and serves the final version.

Real: the `lockgate ingest` command in a subprocess, killed with SIGKILL; the real embedded
stores (SQLite documents and FTS5, the embedded vector index) and the real MiniLM embedder."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.rag import wiring

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 4
QUERY = "what does the handbook say about the zebra crossing rule"


def _document(version: int, sections: int = 240) -> bytes:
    parts = [f"# Handbook edition {version}\n"]
    for n in range(sections):
        parts.append(
            f"## Rule {n}\n\nEdition {version} rule {n}: the zebra crossing rule number {n} "
            f"says walkers wait for the green light and cross in {n % 7 + 2} steps.\n"
        )
    return "\n".join(parts).encode()


def _ingest(data_dir: Path, path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}"}
    return subprocess.Popen(
        [sys.executable, "-m", "lockgate.cli", "ingest", str(path), "--collection", "kb",
         "--data-dir", str(data_dir), "--quiet"],
        cwd=data_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _writing(data_dir: Path) -> bool:
    """The document row says chunks are being written."""
    try:
        with sqlite3.connect(data_dir / wiring.RAG_DB, timeout=1) as db:
            row = db.execute(
                "SELECT pending_count FROM rag_documents WHERE status = 'indexing'"
            ).fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row and row[0])


async def _check_served(data_dir: Path, embedder: MiniLMEmbedder) -> int:
    """Opens the stores as a restarted server would; returns the committed edition."""
    rag = wiring.embedded(data_dir, embedder=embedder)
    try:
        (record,) = await rag.ingestion.list_documents("default", "kb")
        served = await rag.retriever.retrieve("default", "kb", QUERY, 10, min_similarity=0)
        editions = {chunk.text.split(" rule ")[0] for chunk in served}
        if record.content_hash is None:
            assert served == []
            edition = 0
        else:
            assert len(editions) == 1, editions
            edition = int(editions.pop().removeprefix("Edition "))
        await rag.ingestion.repair(stale_after_s=0)
        assert await rag.documents.list_unfinished() == []
        (record,) = await rag.ingestion.list_documents("default", "kb")
        assert record.status in ("ready", "failed") and record.pending_hash is None
        assert rag.text_index.count("rag/default/kb") == record.chunk_count  # type: ignore[attr-defined]
        return edition
    finally:
        await rag.aclose()


@pytest.mark.slow
async def test_kill_9_mid_ingest_never_serves_a_partial_document(tmp_path: Path) -> None:
    embedder = MiniLMEmbedder()
    embedder.load()
    chooser = random.Random(9)
    source = tmp_path / "handbook.md"
    committed, kills = 0, 0
    for edition in range(1, ROUNDS + 1):
        source.write_bytes(_document(edition))
        process = _ingest(tmp_path, source)
        deadline = time.monotonic() + 60
        while not _writing(tmp_path) and process.poll() is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(chooser.uniform(0, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        kills += process.wait(30) == -signal.SIGKILL
        served = await _check_served(tmp_path, embedder)
        assert served in (committed, edition)
        committed = served
    assert kills >= ROUNDS // 2, "the writer should mostly have been killed mid-write"
    source.write_bytes(_document(ROUNDS + 1))
    process = _ingest(tmp_path, source)
    assert process.wait(120) == 0
    assert await _check_served(tmp_path, embedder) == ROUNDS + 1
    # The killed writers' parsing workers (and their forkserver) went away with them.
    deadline = time.monotonic() + 10
    while _leftovers(tmp_path):
        assert time.monotonic() < deadline, _leftovers(tmp_path)
        await asyncio.sleep(0.2)


def _leftovers(tmp_path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "forkserver" in command and str(tmp_path) in command:
            found.append(entry.name)
    return found
