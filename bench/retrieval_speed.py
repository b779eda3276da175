"""Retrieval speed: keyword (BM25) and hybrid latency at 10,000 and 100,000 chunks with the
tantivy index next to the SQLite FTS5 one, BM25 quality of both on the same public data, and
ingestion throughput (first ingestion, then re-ingestion after an edit, with the embedding cache).
Hybrid latency and ingestion run with both MiniLM graphs (the package's fp32 one and the int8
rewrite), hybrid queries alternating between them so both see the same load.

    .venv/bin/python -m bench.retrieval_speed [--parts quality latency ingest] [--sizes ...]
        [--engines "tantivy (now)"]

Latency uses synthetic chunks as `bench/retrieval.py` does (vaswani abstracts cycled, random
unit vectors for k-NN; 2,000 chunks of another tenant share each index), one query at a time,
each vaswani query embedded live by MiniLM, so "hybrid" is what `Retriever.retrieve` costs end
to end. Quality ranks documents by their best chunk, BM25 only, on vaswani-npl (93 queries) and
xquad-en (1,190 questions): the two engines must agree, so the hybrid figures of
`bench/retrieval.py` stay what they were. Writes `bench/results/retrieval_speed.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lockgate.embeddings.base import Embedder
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.rag import wiring
from lockgate.rag.chunking import Chunker
from lockgate.rag.folders import PIPELINE_DEPTH, ingest_paths
from lockgate.rag.loaders import load
from lockgate.rag.model import Block, LoadedDocument, namespace
from lockgate.rag.ports import TextIndex, TextRecord
from lockgate.rag.retrieval import RetrievalSettings, Retriever
from lockgate.stores.embedded.text_index import SqliteTextIndex, TantivyTextIndex
from lockgate.stores.embedded.vectors import EmbeddedVectorIndex
from lockgate.stores.ports import VectorRecord

from bench.retrieval_data import RESULTS, Collection, ndcg_at, percentile, recall_at, vaswani, xquad

TENANT = "bench"
PARTS = ("quality", "latency", "ingest")
ENGINES: dict[str, Callable[[Path], Any]] = {
    "SQLite FTS5 (before)": lambda d: SqliteTextIndex(d / "fts5.db"),
    "tantivy (now)": lambda d: TantivyTextIndex(d / "tantivy"),
}
TARGET_P50_MS, TARGET_P99_MS = 20.0, 40.0


def load_line() -> str:
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}"


async def quality(workdir: Path, lines: list[str]) -> None:
    lines += [
        "## BM25 quality, same chunks, both engines",
        "",
        "| collection | queries | engine | nDCG@10 | recall@5 |",
        "|---|---:|---|---:|---:|",
    ]
    for collection in (vaswani(), xquad()):
        records = _chunks(collection)
        for label, make in ENGINES.items():
            index = make(workdir / f"q-{collection.name}")
            for start in range(0, len(records), 5000):
                await index.upsert(records[start : start + 5000])
            ndcgs, recalls = [], []
            ns = records[0].namespace
            for qid, query in collection.queries.items():
                hits = await index.search(query, namespace=ns, k=40)
                ranked = list(dict.fromkeys(h.payload["doc_id"] for h in hits))
                ndcgs.append(ndcg_at(ranked, collection.qrels[qid], 10))
                recalls.append(recall_at(ranked, collection.qrels[qid], 5))
            lines.append(
                f"| {collection.name} | {len(collection.queries)} | {label}"
                f" | {np.mean(ndcgs):.4f} | {np.mean(recalls):.4f} |"
            )
            index.close()
    lines.append("")


def _chunks(collection: Collection) -> list[TextRecord]:
    chunker = Chunker()
    ns = namespace(TENANT, collection.name.replace("-", ""))
    records = []
    for doc_id, text in collection.docs.items():
        title = collection.titles.get(doc_id, "")
        for chunk in chunker.chunk(LoadedDocument(title, [Block("text", text)])):
            payload = {"doc_id": doc_id, "chunk": chunk.index, "text": chunk.text}
            records.append(TextRecord(f"{doc_id}:{chunk.index}", ns, chunk.indexed_text(), payload))
    return records


async def latency(
    embedders: dict[str, Embedder],
    workdir: Path,
    lines: list[str],
    sizes: Sequence[int],
    engines: Sequence[str],
) -> None:
    """Hybrid latency with each embedding graph, query by query in turn, so both see the same
    load on a shared machine."""
    embedder = next(iter(embedders.values()))
    source = vaswani()
    corpus = list(source.docs.values())
    queries = list(source.queries.values())
    rng = np.random.default_rng(7)
    lines += [
        "## Retrieval latency",
        "",
        f"k = 5 (100 candidates per method), one query at a time; target hybrid p50 ≤"
        f" {TARGET_P50_MS:g} ms and p99 ≤ {TARGET_P99_MS:g} ms at 100,000 chunks.",
        "",
        "| chunks | engine | MiniLM graph | BM25 p50 ms | BM25 p99 ms | hybrid p50 ms"
        " | hybrid p99 ms | index build s | machine |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for size in sizes:
        ns = namespace(TENANT, f"size{size}")
        vectors = EmbeddedVectorIndex(workdir / f"v{size}.db", dimensions=embedder.dimensions)
        items = [(f"s{i}", f"{corpus[i % len(corpus)]} item {i}") for i in range(size)]
        for start in range(0, size, 5000):
            block = rng.standard_normal((min(5000, size - start), embedder.dimensions))
            block = (block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32)
            await vectors.upsert(
                [
                    VectorRecord(i, ns, v, {"doc_id": i, "text": t})
                    for (i, t), v in zip(items[start : start + 5000], block, strict=True)
                ]
            )
        for label, make in ENGINES.items():
            if label not in engines:
                continue
            text: TextIndex = make(workdir / f"l{size}")
            started = time.perf_counter()
            for start in range(0, size, 5000):
                await text.upsert(
                    [
                        TextRecord(i, ns, t, {"doc_id": i, "text": t})
                        for i, t in items[start : start + 5000]
                    ]
                )
            other = namespace("other", "kb")
            await text.upsert([TextRecord(f"o{i}", other, corpus[i], {}) for i in range(2000)])
            build = time.perf_counter() - started
            retrievers = {
                graph: Retriever(text, vectors, model, RetrievalSettings(min_similarity=-1.0))
                for graph, model in embedders.items()
            }
            depth = next(iter(retrievers.values())).settings.candidates
            bm25: list[float] = []
            hybrid: dict[str, list[float]] = {graph: [] for graph in retrievers}
            for _ in range(2):
                for query in queries:
                    t0 = time.perf_counter()
                    await text.search(query, namespace=ns, k=depth)
                    bm25.append(time.perf_counter() - t0)
                    for graph, retriever in retrievers.items():
                        t0 = time.perf_counter()
                        await retriever.retrieve(TENANT, f"size{size}", query, 5)
                        hybrid[graph].append(time.perf_counter() - t0)
            for graph, times in hybrid.items():
                lines.append(
                    f"| {size:,} | {label} | {graph} | {ms(bm25, 50)} | {ms(bm25, 99)}"
                    f" | {ms(times, 50)} | {ms(times, 99)} | {build:.1f} | {load_line()} |"
                )
            getattr(text, "close", lambda: None)()
        vectors.close()
    lines.append("")


class Counting:
    """Counts the texts that reach the model."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.texts = inner, 0
        self.name, self.dimensions = inner.name, inner.dimensions

    async def embed(self, texts: Sequence[str]) -> Any:
        self.texts += len(texts)
        return await self.inner.embed(texts)


class Free:
    """An embedder that costs nothing (a one-hot vector per text): what is left is the
    pipeline's own cost (parsing, chunking, SQLite, tantivy, the vector index)."""

    name, dimensions = "free", 384

    async def embed(self, texts: Sequence[str]) -> Any:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, hash(text) % self.dimensions] = 1.0
        return out


ONE_AT_A_TIME = "one document at a time (before)"
PIPELINED = f"{PIPELINE_DEPTH} documents in flight (now)"


def _articles() -> dict[str, list[str]]:
    collection = xquad()
    articles: dict[str, list[str]] = {}
    for doc_id, text in collection.docs.items():
        articles.setdefault(collection.titles[doc_id], []).append(text)
    return articles


def _write_folder(folder: Path, articles: dict[str, list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for title, paragraphs in articles.items():
        body = f"# {title}\n\n" + "\n\n".join(paragraphs)
        (folder / f"{title.replace('/', ' ')}.md").write_text(body, encoding="utf-8")


class ModelClock:
    """Adds up the wall time the model itself runs (`embed_sync`, in the embedder's worker
    thread) during an ingestion, so the model's share is measured in the same run, under the
    same load, as the ingestion around it."""

    def __init__(self, embedder: MiniLMEmbedder) -> None:
        self.seconds = 0.0
        run = embedder.embed_sync

        def timed(texts: Sequence[str]) -> Any:
            started = time.perf_counter()
            try:
                return run(texts)
            finally:
                self.seconds += time.perf_counter() - started

        embedder.embed_sync = timed  # type: ignore[method-assign]


@dataclass
class Run:
    chunks: int
    seconds: float
    model_seconds: float
    again_embedded: int = 0
    again_seconds: float = 0.0
    embedded: int = 0
    load: str = ""
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds


async def ingest(embedders: dict[str, MiniLMEmbedder], workdir: Path, lines: list[str]) -> None:
    """Every (graph, pipeline) pair from an empty data directory, in an interleaved order so a
    load change on a shared machine hits both sides of each ratio; the model's own time is
    clocked inside each run; then the pipeline alone (a free embedder)."""
    at_start = load_line()
    articles = _articles()
    clocks = {graph: ModelClock(model) for graph, model in embedders.items()}
    (fp32, _), (int8, _) = embedders.items()
    order = [(fp32, 1), (int8, PIPELINE_DEPTH), (int8, 1), (fp32, PIPELINE_DEPTH)]
    runs: dict[tuple[str, int], Run] = {}
    for n, (graph, depth) in enumerate(order + order[::-1]):
        print(f"  {graph}, depth {depth} ...", flush=True)
        folder = workdir / f"docs{n}"
        _write_folder(folder, articles)
        run = await ingest_one(
            embedders[graph], clocks[graph], depth, folder, workdir / f"data{n}", articles
        )
        if (graph, depth) not in runs or run.seconds < runs[graph, depth].seconds:
            runs[graph, depth] = run
    free: dict[int, tuple[float, float]] = {}
    for depth in (1, PIPELINE_DEPTH):
        folder = workdir / f"free{depth}"
        _write_folder(folder, articles)
        rag = wiring.embedded(workdir / f"free-data{depth}", embedder=Free())
        cpu, started = _cpu(), time.perf_counter()
        results = await ingest_paths(
            rag.ingestion, [folder], tenant=TENANT, collection="kb", depth=depth
        )
        chunks = sum(r.chunks for r in results)
        free[depth] = (chunks / (time.perf_counter() - started), (_cpu() - cpu) / chunks)
        await rag.aclose()
    tokens = _tokens(next(iter(embedders.values())))
    baseline = runs[fp32, 1].rate
    label = {1: ONE_AT_A_TIME, PIPELINE_DEPTH: PIPELINED}
    lines += [
        INGESTION,
        "",
        f"Measured in a run of its own: {at_start} at its start, {load_line()} at its end.",
        "",
        "xquad-en as one Markdown file per article in a folder, ingested as `lockgate ingest`"
        " does (`ingest_paths`): chunks of at most 200 MiniLM tokens; real MiniLM, SQLite,"
        " tantivy, embedded vector index, each run from an empty data directory. Then 5 files"
        " edited (one paragraph each) and the folder ingested again, with the embedding cache."
        " Each configuration ran twice, in the order first row, fourth, third, second, then"
        " back, so load that comes and goes hits every one; the faster of its two runs is"
        " shown (another process's load only ever slows a run). The issue's target:"
        f' at least 2x the first row ({baseline:.1f} chunks/s in this run). "model s" is the'
        " wall time the model itself ran during the first ingestion.",
        "",
        "| MiniLM graph | pipeline | run | chunks embedded | seconds | chunks/s (all chunks of"
        " the collection) | x first row | model s | model's share of the time | CPU s"
        " | machine |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for depth in (1, PIPELINE_DEPTH):
        for graph in (fp32, int8):
            run = runs[graph, depth]
            lines += [
                f"| {graph} | {label[depth]} | first ingestion (empty embedding cache)"
                f" | {run.embedded} | {run.seconds:.1f} | {run.rate:.1f}"
                f" | {run.rate / baseline:.2f} | {run.model_seconds:.1f}"
                f" | {run.model_seconds / run.seconds:.0%} | {run.cpu_seconds:.1f} | {run.load} |",
                f"| {graph} | {label[depth]} | again after editing 5 files (one paragraph each)"
                f" | {run.again_embedded} | {run.again_seconds:.1f}"
                f" | {run.chunks / run.again_seconds:.1f} | | | | | {run.load} |",
            ]
    lines += [
        "",
        "### The model's ceiling",
        "",
        f"The pipeline alone (an embedder that costs nothing): {free[1][0]:.0f} chunks/s one"
        f" document at a time, {free[PIPELINE_DEPTH][0]:.0f} chunks/s with {PIPELINE_DEPTH} in"
        f" flight; {free[PIPELINE_DEPTH][1] * 1000:.1f} ms of CPU per chunk (the rest of its"
        " time is mostly waiting on disk syncs, which overlap the model). The model's cost per"
        " token, clocked inside the pipelined runs above (the same run, under the same load, as"
        " the throughput it is compared with), and what ingestion would reach if everything but"
        ' the model were free (chunks / model seconds). "CPU s" above is this process\'s CPU'
        " time in each run (the model's threads and the pipeline, not the parse worker): on two"
        " idle cores"
        " no run can take less wall time than half of it.",
        "",
        "| MiniLM graph | tokens | model ms per 1,000 tokens | ceiling chunks/s (free pipeline)"
        " | ceiling x first row | measured pipelined chunks/s | of the ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for graph in (fp32, int8):
        run = runs[graph, PIPELINE_DEPTH]
        ceiling = run.chunks / run.model_seconds
        lines.append(
            f"| {graph} | {tokens:,} | {run.model_seconds / tokens * 1e6:.0f} | {ceiling:.1f}"
            f" | {ceiling / baseline:.2f} | {run.rate:.1f} | {run.rate / ceiling:.0%} |"
        )
    best = runs[int8, PIPELINE_DEPTH]
    per_1k = best.model_seconds / tokens * 1e6
    needed = best.chunks / (2 * baseline) / tokens * 1e6
    lines += [
        "",
        f"2x the first row is {2 * baseline:.1f} chunks/s: {best.chunks} chunks in"
        f" {best.chunks / (2 * baseline):.1f} s, so even with a pipeline that cost nothing the"
        f" model would have to take at most {needed:.0f} ms per 1,000 tokens; the int8 graph"
        f" took {per_1k:.0f} ({per_1k / needed:.2f}x that) in this run. The pipeline now keeps"
        f" the model busy {best.model_seconds / best.seconds:.0%} of the time, so what is left"
        " to gain is in the model's cost per token, not around it.",
        "",
    ]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tokens(embedder: MiniLMEmbedder) -> int:
    """The tokens the model sees for the collection's chunks, as ingestion chunks them."""
    chunker = Chunker()
    texts = []
    for title, paragraphs in _articles().items():
        body = (f"# {title}\n\n" + "\n\n".join(paragraphs)).encode()
        document = load(body, filename=f"{title}.md")
        texts += [c.indexed_text() for c in chunker.chunk(document)]
    encodings = embedder._tokenizer.encode_batch(texts)
    return sum(min(len(e.ids), embedder.max_length) for e in encodings)


async def ingest_one(
    embedder: MiniLMEmbedder,
    clock: ModelClock,
    depth: int,
    folder: Path,
    data_dir: Path,
    articles: dict[str, list[str]],
) -> Run:
    """The folder ingested into an empty data directory; then 5 of its files edited (one
    paragraph each) and the folder ingested again."""
    counting = Counting(embedder)
    rag = wiring.embedded(data_dir, embedder=counting)
    clock.seconds, started, cpu = 0.0, time.perf_counter(), _cpu()
    results = await ingest_paths(
        rag.ingestion, [folder], tenant=TENANT, collection="kb", depth=depth
    )
    run = Run(sum(r.chunks for r in results), time.perf_counter() - started, clock.seconds)
    run.cpu_seconds = _cpu() - cpu
    failed = [r.error for r in results if r.outcome == "failed"]
    if failed:
        raise RuntimeError(f"ingestion failed: {failed[:3]}")
    run.load, run.embedded = load_line(), counting.texts
    for title, paragraphs in list(articles.items())[:5]:
        _write_folder(folder, {title: ["This paragraph was rewritten since.", *paragraphs[1:]]})
    started = time.perf_counter()
    await ingest_paths(rag.ingestion, [folder], tenant=TENANT, collection="kb", depth=depth)
    run.again_seconds = time.perf_counter() - started
    run.again_embedded = counting.texts - run.embedded
    await rag.aclose()
    return run


async def main(args: argparse.Namespace) -> None:
    embedders = {
        "shipped fp32 (before)": MiniLMEmbedder(int8_graph=False),
        "int8 (now)": MiniLMEmbedder(),
    }
    for embedder in embedders.values():
        await embedder.embed(["warm up"])
    lines = [
        "# Retrieval speed",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" one run on a shared machine, {load_line()} at the start.",
        "",
    ]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "quality" in args.parts:
            print("quality ...", flush=True)
            await quality(workdir, lines)
        if "latency" in args.parts:
            print("latency ...", flush=True)
            await latency(embedders, workdir, lines, args.sizes, args.engines)
        if "ingest" in args.parts:
            print("ingestion ...", flush=True)
            await ingest(embedders, workdir, lines)
    lines.append(f"Total run time {time.perf_counter() - started:.0f} s; {load_line()} at the end.")
    report = "\n".join(lines) + "\n"
    print(report)
    target = RESULTS / "retrieval_speed.md"
    if set(args.parts) == set(PARTS):
        RESULTS.mkdir(exist_ok=True)
        target.write_text(report)
    elif args.parts == ["ingest"] and target.is_file():
        target.write_text(_with_ingestion(target.read_text(), lines[lines.index(INGESTION) :]))


INGESTION = "## Ingestion throughput"


def _with_ingestion(report: str, section: list[str]) -> str:
    """The results file with its ingestion section replaced by a separate run's (the other
    parts take most of an hour; their figures stay those of their own run)."""
    kept = report.split(INGESTION)[0].rstrip("\n")
    return "\n".join([kept, "", *section]) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    asyncio.run(main(parser.parse_args()))
