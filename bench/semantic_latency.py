"""Single-query latency of the semantic cache's own parts: the MiniLM embedding (through
`embed`, thread hop included, and the bare model run; the shipped fp32 graph next to the int8
rewrite), the tokenizer, the thread hop alone and the borderline guard.

Wall-clock figures move with other work on the machine, so CPU time of the measuring thread is
printed next to them for the inline parts.

    .venv/bin/python -m bench.semantic_latency
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lockgate.cache.guard import check
from lockgate.embeddings.local import MiniLMEmbedder

RESULTS = Path(__file__).resolve().parent / "results" / "semantic_latency.md"
QUERIES = [
    "How do I cancel my order?",
    "What is your return policy for items bought on sale?",
    "I want a refund for order 48213, it arrived damaged and the box was open",
    "Can I change the delivery address after the parcel has shipped?",
]
RUNS = 200


def ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1e3, ordered[int(len(ordered) * 0.9)] * 1e3


def _row(name: str, wall: list[float], cpu: list[float] | None, digits: int) -> str:
    p50, p90 = ms(wall)
    cpu_p50 = f"{ms(cpu)[0]:.{digits}f} ms" if cpu else "-"
    return f"| {name} | {p50:.{digits}f} ms | {p90:.{digits}f} ms | {cpu_p50} |"


def _process_cpu() -> float:
    """CPU of the whole process: onnxruntime's intra-op threads work for the caller too."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _embedder_rows(label: str, embedder: MiniLMEmbedder) -> list[str]:
    embedder.load()
    for text in QUERIES:
        embedder.embed_sync([text])
    bare, bare_cpu, hopped = [], [], []
    for i in range(RUNS):
        text = [QUERIES[i % len(QUERIES)]]
        wall, cpu = time.perf_counter(), _process_cpu()
        embedder.embed_sync(text)
        bare.append(time.perf_counter() - wall)
        bare_cpu.append(_process_cpu() - cpu)
        wall = time.perf_counter()
        await embedder.embed(text)
        hopped.append(time.perf_counter() - wall)
    embedder.close()
    return [
        _row(f"MiniLM embed_sync, {label} (model run, inline)", bare, bare_cpu, 2),
        _row(f"MiniLM embed, {label} (worker thread, as the cache calls it)", hopped, None, 2),
    ]


async def measure() -> list[str]:
    shipped = MiniLMEmbedder(int8_graph=False)
    rewritten = MiniLMEmbedder()
    rows = await _embedder_rows("shipped fp32 graph (before)", shipped)
    rows += await _embedder_rows(f"{rewritten.graph} graph (now)", rewritten)
    tokenizer = rewritten._tokenizer
    token_wall, token_cpu = [], []
    for i in range(2000):
        wall, cpu = time.perf_counter(), time.thread_time()
        tokenizer.encode_batch([QUERIES[i % len(QUERIES)]], add_special_tokens=True)
        token_wall.append(time.perf_counter() - wall)
        token_cpu.append(time.thread_time() - cpu)
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1)
    hop_wall = []
    for _ in range(2000):
        wall = time.perf_counter()
        await loop.run_in_executor(worker, int)
        hop_wall.append(time.perf_counter() - wall)
    worker.shutdown()
    guard_wall, guard_cpu = [], []
    for i in range(2000):
        query = f"I want a refund for order {i}, it arrived damaged and the box was open"
        wall, cpu = time.perf_counter(), time.thread_time()
        check(query, QUERIES[2])
        guard_wall.append(time.perf_counter() - wall)
        guard_cpu.append(time.thread_time() - cpu)
    load = os.getloadavg()[0]
    return [
        "# Semantic cache parts, single query",
        "",
        f"{os.cpu_count()} cores, load average {load:.1f} at the end of the run "
        "(wall-clock figures include waiting for other work). CPU is the process's (the"
        " model's intra-op threads included) for the model rows, the thread's otherwise.",
        "",
        "| part | p50 wall | p90 wall | p50 CPU |",
        "|---|---|---|---|",
        *rows,
        _row("tokenizer encode (one query)", token_wall, token_cpu, 3),
        _row("hop to a worker thread and back (empty call)", hop_wall, None, 3),
        _row("borderline guard check", guard_wall, guard_cpu, 3),
    ]


def main() -> None:
    text = "\n".join(asyncio.run(measure())) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
