"""The int8 rewrite of the bundled MiniLM: same vectors as the shipped graph, cached, optional."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lockgate.embeddings import minilm_graph
from lockgate.embeddings.local import MiniLMEmbedder, default_threads

REFERENCE = Path(__file__).parents[2] / "fixtures" / "minilm_reference.json"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None, reason="the rewrite needs the onnx package"
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def int8(cache_dir: Path) -> MiniLMEmbedder:
    model = MiniLMEmbedder(cache_dir=cache_dir)
    model.load()
    return model


@pytest.fixture(scope="module")
def shipped() -> MiniLMEmbedder:
    model = MiniLMEmbedder(int8_graph=False)
    model.load()
    return model


def texts() -> list[str]:
    sentences: list[str] = json.loads(REFERENCE.read_text(encoding="utf-8"))["sentences"]
    return [
        *sentences,
        "",
        "ok",
        "Not a good idea.",
        "SELECT id, name FROM users WHERE created_at > now() - interval '7 days';",
        "The quarterly report shows revenue grew 12% while operating costs stayed flat. " * 6,
    ]


@pytest.mark.slow
def test_the_rewrite_runs_int8_and_keeps_the_vectors(
    int8: MiniLMEmbedder, shipped: MiniLMEmbedder
) -> None:
    assert int8.graph == "int8" and shipped.graph == "shipped"
    batch = texts()
    cosines = (int8.embed_sync(batch) * shipped.embed_sync(batch)).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.995, f"{batch[worst]!r}: cosine {cosines[worst]:.4f}"


@pytest.mark.slow
def test_padding_in_a_batch_does_not_change_a_vector(int8: MiniLMEmbedder) -> None:
    batch = texts()
    together = int8.embed_sync(batch)
    for i in (0, len(batch) - 2, len(batch) - 1):
        alone = int8.embed_sync([batch[i]])[0]
        assert float(together[i] @ alone) > 0.999, batch[i]


@pytest.mark.slow
def test_a_second_load_reuses_the_built_file(
    int8: MiniLMEmbedder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("rebuilt a cached graph")

    monkeypatch.setattr(minilm_graph, "build", no_build)
    again = MiniLMEmbedder(cache_dir=cache_dir)
    assert again.graph == "int8"
    assert len(list(cache_dir.glob("*.onnx"))) == 1


def test_without_onnx_the_shipped_graph_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    model = MiniLMEmbedder(cache_dir=tmp_path)
    assert model.graph == "shipped"
    assert model.embed_sync(["hello"]).shape == (1, model.dimensions)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_rewrite_that_drifts_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(minilm_graph, "MIN_COSINE", 1.01)
    model = MiniLMEmbedder(cache_dir=tmp_path)
    assert model.graph == "shipped"
    assert "drifted" in caplog.text
    assert not list(tmp_path.glob("*.onnx"))

    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("retried a rewrite that failed for this model")

    monkeypatch.setattr(minilm_graph, "build", no_build)
    assert MiniLMEmbedder(cache_dir=tmp_path).graph == "shipped"


@pytest.mark.slow
def test_a_damaged_cached_graph_is_dropped_for_the_shipped_one(
    int8: MiniLMEmbedder, cache_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (built,) = cache_dir.glob("*.onnx")
    damaged = tmp_path / built.name
    damaged.write_bytes(built.read_bytes()[: 1 << 16])
    model = MiniLMEmbedder(cache_dir=tmp_path)
    assert model.graph == "shipped"
    assert model.embed_sync(["hello"]).shape == (1, model.dimensions)
    assert "does not load" in caplog.text
    assert not damaged.exists()


def test_a_query_runs_on_one_thread_and_a_batch_on_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert default_threads("int8") == 1  # a query: waking threads costs more than it saves
    assert default_threads("int8", texts=32) == 4
    assert default_threads("shipped") == 4
