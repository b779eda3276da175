"""`lockgate ingest` while the server runs is picked up by it (issue 10): the server keeps the
vectors in memory, notices that another process changed the collection, and reopens them.

Real: the gateway on loopback with the embedded stores and MiniLM, the `lockgate ingest` command
in a subprocess writing the same data directory, the mock upstream answering."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(
    upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningGateway, Path]]:
    data_dir = tmp_path_factory.mktemp("serving")
    models = {
        "handbook": {
            "targets": ["mock/gpt-fast"],
            "rag": {"collection": "handbook", "when_nothing_found": "call_model"},
        }
    }
    with gateway(mock_policy(upstream, models), data_dir) as running:
        yield running, data_dir


def _sources(gw: RunningGateway) -> list[dict[str, object]]:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    completion = client.chat.completions.create(
        model="handbook",
        messages=[{"role": "user", "content": "How long do walkers wait at a zebra crossing?"}],
    )
    sources: list[dict[str, object]] = (completion.model_extra or {})["lockgate"]["sources"]
    return sources


@pytest.mark.slow
def test_a_document_ingested_from_the_command_line_is_served_at_once(
    served: tuple[RunningGateway, Path], tmp_path: Path
) -> None:
    gw, data_dir = served
    assert _sources(gw) == []  # the server has read the (empty) collection
    document = tmp_path / "crossings.md"
    document.write_text(
        "# Crossings\n\n## Zebra crossings\n\nAt a zebra crossing walkers wait until the cars"
        " have stopped, then cross; nobody waits longer than ten seconds.\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "lockgate.cli", "ingest", str(document), "--collection",
         "handbook", "--data-dir", str(data_dir), "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5
    while not (sources := _sources(gw)):
        assert time.monotonic() < deadline, "the server never saw the new document"
        time.sleep(0.2)
    assert str(sources[0]["uri"]).endswith("crossings.md")
