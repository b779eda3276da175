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
from pathlib import Path
from typing import Any

import numpy as np
from lockgate.embeddings.base import Embedder
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.rag import wiring
from lockgate.rag.chunking import Chunker
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
MACS_PER_TOKEN = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
"""MiniLM-L6's dense layers per token (attention projections and the feed-forward block)."""


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


async def ingest(embedders: dict[str, MiniLMEmbedder], workdir: Path, lines: list[str]) -> None:
    """Each embedding graph in turn, from an empty workdir."""
    lines += [
        "## Ingestion throughput",
        "",
        "xquad-en as one Markdown file per article, chunks of at most 200 MiniLM tokens; real"
        " MiniLM, SQLite, tantivy, embedded vector index. Then 5 files edited (one paragraph"
        " each) and everything ingested again, with the embedding cache.",
        "",
        "| MiniLM graph | run | chunks embedded | seconds | chunks/s (all chunks of the"
        " collection) | machine |",
        "|---|---|---:|---:|---:|---|",
    ]
    costs = []
    for graph, embedder in embedders.items():
        costs.append(await ingest_one(graph, embedder, workdir / graph.split()[0], lines))
    lines += ["", *costs, ""]


async def ingest_one(graph: str, embedder: MiniLMEmbedder, workdir: Path, lines: list[str]) -> str:
    """xquad-en as one Markdown file per article, as `bench/retrieval.py` ingests it; then 5 of
    the files edited (one paragraph each) and everything ingested again."""
    collection = xquad()
    articles: dict[str, list[str]] = {}
    for doc_id, text in collection.docs.items():
        articles.setdefault(collection.titles[doc_id], []).append(text)
    counting = Counting(embedder)
    rag = wiring.embedded(workdir / "ingest", embedder=counting)
    started, chunks = time.perf_counter(), 0
    for title, paragraphs in articles.items():
        body = (f"# {title}\n\n" + "\n\n".join(paragraphs)).encode()
        chunks += (await rag.ingestion.ingest(TENANT, "kb", f"{title}.md", body)).chunks
    first = time.perf_counter() - started
    edited = list(articles)[:5]
    for title in edited:
        articles[title][0] = "This paragraph was rewritten since the last ingestion."
    embedded_first, started = counting.texts, time.perf_counter()
    for title, paragraphs in articles.items():
        body = (f"# {title}\n\n" + "\n\n".join(paragraphs)).encode()
        await rag.ingestion.ingest(TENANT, "kb", f"{title}.md", body)
    second = time.perf_counter() - started
    again = counting.texts - embedded_first
    await rag.aclose()

    tokenizer_texts = [" ".join(p) for p in articles.values()][:8]
    encodings = [len(e.ids) for e in embedder._tokenizer.encode_batch(tokenizer_texts)]
    tokens = sum(min(n, embedder.max_length) for n in encodings)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    embedder.embed_sync(tokenizer_texts)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    gflops = 2 * MACS_PER_TOKEN * tokens / cpu / 1e9
    lines += [
        f"| {graph} | first ingestion (empty embedding cache) | {embedded_first} | {first:.1f}"
        f" | {chunks / first:.1f} | {load_line()} |",
        f"| {graph} | again after editing {len(edited)} files (one paragraph each) | {again}"
        f" | {second:.1f} | {chunks / second:.1f} | {load_line()} |",
    ]
    return (
        f"Model cost, {graph}: {2 * MACS_PER_TOKEN / 1e6:.0f} MFLOP per token in MiniLM's dense"
        f" layers; {tokens} tokens took {cpu:.2f} s of CPU ({wall:.2f} s wall), {gflops:.0f}"
        " GFLOP/s of CPU time."
    )


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
    if set(args.parts) == set(PARTS):
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "retrieval_speed.md").write_text(report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    asyncio.run(main(parser.parse_args()))
