"""Single-query latency of the semantic cache's own parts: the MiniLM embedding (through
`embed`, thread hop included, and the bare model run) and the borderline guard.

Wall-clock figures move with other work on the machine, so CPU time of the measuring thread is
printed next to them for the inline parts.

    .venv/bin/python -m bench.semantic_latency
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
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


async def measure() -> list[str]:
    embedder = MiniLMEmbedder()
    embedder.load()
    for text in QUERIES:
        embedder.embed_sync([text])
    bare, bare_cpu, hopped = [], [], []
    for i in range(RUNS):
        text = [QUERIES[i % len(QUERIES)]]
        wall, cpu = time.perf_counter(), time.thread_time()
        embedder.embed_sync(text)
        bare.append(time.perf_counter() - wall)
        bare_cpu.append(time.thread_time() - cpu)
        wall = time.perf_counter()
        await embedder.embed(text)
        hopped.append(time.perf_counter() - wall)
    guard_wall, guard_cpu = [], []
    for i in range(2000):
        query = f"I want a refund for order {i}, it arrived damaged and the box was open"
        wall, cpu = time.perf_counter(), time.thread_time()
        check(query, QUERIES[2])
        guard_wall.append(time.perf_counter() - wall)
        guard_cpu.append(time.thread_time() - cpu)
    embedder.close()
    load = os.getloadavg()[0]
    rows = [
        "# Semantic cache parts, single query",
        "",
        f"{os.cpu_count()} cores, load average {load:.1f} at the end of the run "
        "(wall-clock figures include waiting for other work).",
        "",
        "| part | p50 wall | p90 wall | p50 CPU (this thread) |",
        "|---|---|---|---|",
        _row("MiniLM embed_sync (model run, inline)", bare, bare_cpu, 2),
        _row("MiniLM embed (worker thread, as the cache calls it)", hopped, None, 2),
        _row("borderline guard check", guard_wall, guard_cpu, 3),
    ]
    return rows


def main() -> None:
    text = "\n".join(asyncio.run(measure())) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
