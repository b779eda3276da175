"""Cache hits end to end: how much an exact and a semantic hit add over a bare `/health`.

The gateway runs as `lockgate serve` with caching on, in front of the mock upstream. Each
figure is one client's sequential requests over keep-alive, so it is latency, not throughput:
`/health` (the floor: HTTP, routing, JSON), an exact hit (same request again), and semantic
hits (new wordings of cached questions: each needs its own embedding, as a real paraphrase
would). All three are measured in one run and compared as differences from the floor.

Run: `.venv/bin/python -m bench.cache_latency` (table also in bench/results/cache_latency.md).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.procs import Servers, free_port

ROOT = Path(__file__).resolve().parents[1]
LOCKGATE = [sys.executable, "-m", "lockgate.cli"]
KEY = "lg-bench-cache-key-0123456789"
RESULTS = ROOT / "bench" / "results" / "cache_latency.md"
QUESTIONS = (
    "How do I reset my account password",
    "Where can I see the status of my delivery",
    "How can I change the email address on my account",
)
OPENERS = ("", "Hi, ", "Hello, ", "Hey there, ", "Quick question: ", "Excuse me, ")
CLOSERS = ("?", " please?", ", thanks?", " exactly?", "? Thank you", " again?")
POLICY = """\
providers:
  mock: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: bench}}
models:
  mock: {{targets: [mock/gpt-bench]}}
tiers: {{simple: mock, medium: mock, complex: mock}}
cache: {{enabled: true, ttl_s: 3600}}
safety: {{injection_action: "off"}}
"""


def _timed(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None
) -> tuple[float, dict[str, str]]:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}")
    return elapsed, {k.lower(): v for k, v in response.getheaders()}


def _chat(text: str) -> bytes:
    return json.dumps({"model": "mock", "messages": [{"role": "user", "content": text}]}).encode()


def _p50(samples: list[float]) -> float:
    return statistics.median(samples)


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(port: int, cpu_seconds: Callable[[], float]) -> dict[str, list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def run(method: str, path: str, body: bytes | None) -> tuple[float, dict[str, str]]:
        return _timed(conn, method, path, body)

    for question in QUESTIONS:  # the cached originals
        run("POST", "/v1/chat/completions", _chat(question + "?"))
    health = [run("GET", "/health", None)[0] for _ in range(400)]
    exact = []
    for _ in range(400):
        elapsed, headers = run("POST", "/v1/chat/completions", _chat(QUESTIONS[0] + "?"))
        assert headers["x-lockgate-cache"] == "exact"
        exact.append(elapsed)
    semantic, misses = [], 0
    cpu_before = cpu_seconds()
    for question, opener, closer in itertools.product(QUESTIONS, OPENERS, CLOSERS):
        text = f"{opener}{question[0].lower() if opener else question[0]}{question[1:]}{closer}"
        if text == question + "?":
            continue
        elapsed, headers = run("POST", "/v1/chat/completions", _chat(text))
        if headers.get("x-lockgate-cache") == "semantic":
            semantic.append(elapsed)
        else:
            misses += 1
    cpu = (cpu_seconds() - cpu_before) * 1000 / max(1, len(semantic) + misses)
    conn.close()
    return {
        "health": health,
        "exact": exact,
        "semantic": semantic,
        "misses": [float(misses)],
        "semantic_cpu": [cpu],
    }


def report(samples: dict[str, list[float]]) -> str:
    floor = _p50(samples["health"])
    rows = [
        "| request | n | p50 ms | p99 ms | added p50 over /health | target | result |",
        "|---|---:|---:|---:|---:|---|---|",
        f"| GET /health | {len(samples['health'])} | {floor:.2f} | "
        f"{_p99(samples['health']):.2f} | — | — | — |",
    ]
    exact_added = _p50(samples["exact"]) - floor
    rows.append(
        f"| exact hit | {len(samples['exact'])} | {_p50(samples['exact']):.2f} | "
        f"{_p99(samples['exact']):.2f} | +{exact_added:.2f} | ≤ 1 ms added | "
        f"{'PASS' if exact_added <= 1 else 'FAIL'} |"
    )
    if samples["semantic"]:
        p50 = _p50(samples["semantic"])
        rows.append(
            f"| semantic hit (new wording) | {len(samples['semantic'])} | {p50:.2f} | "
            f"{_p99(samples['semantic']):.2f} | +{p50 - floor:.2f} | p50 ≤ 8 ms | "
            f"{'PASS' if p50 <= 8 else 'FAIL'} |"
        )
    misses = int(samples["misses"][0])
    note = (
        f"\nRewordings not served from the cache (guard or threshold said no): {misses}."
        f" Gateway CPU per rewording (hit or not): {samples['semantic_cpu'][0]:.2f} ms.\n"
    )
    return "\n".join(rows) + "\n" + note


GRAPHS = {"shipped fp32 graph (before)": "false", "int8 graph (now)": "true"}


def main() -> None:
    sections = []
    with tempfile.TemporaryDirectory() as tmp, Servers(Path(tmp)) as servers:
        mock_port = free_port()
        mock = servers.start(
            "mock", [*LOCKGATE, "mock-upstream", "--port", str(mock_port)], mock_port
        )
        servers.wait_ready(mock, "/_mock/health")
        config = Path(tmp) / "policy.yaml"
        config.write_text(POLICY.format(port=mock_port))
        for label, int8 in GRAPHS.items():
            port = free_port()
            env = {
                "LOCKGATE_API_KEY": KEY,
                "LOCKGATE_DATA_DIR": str(Path(tmp) / f"data-{int8}"),
                "LOCKGATE_LOG_LEVEL": "WARNING",
                "LOCKGATE_LOCAL_EMBEDDING_INT8": int8,
            }
            gateway = servers.start(
                f"lockgate-{int8}",
                [*LOCKGATE, "serve", "--config", str(config), "--port", str(port)],
                port,
                env=env,
            )
            servers.wait_ready(gateway, "/health")
            sections.append(f"## MiniLM {label}\n\n" + report(measure(port, gateway.cpu_seconds)))
            servers.stop(gateway)
    table = (
        "# Cache hits end to end\n\n"
        f"One run, the two embedding graphs one after the other; {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.2f} at the end.\n\n" + "\n".join(sections)
    )
    print(table)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
