"""What each protocol costs in the gateway: chat completions, messages, the Responses API
(plain and a follow-up by `previous_response_id`) and embeddings, with tracing off and on.

Two `lockgate serve` processes (one exporting traces over OTLP/HTTP) in front of the mock
upstream. One client sends sequential requests over keep-alive, the routes interleaved so
machine noise falls on all alike, and reads both the client-side latency and the gateway's own
`x-lockgate-overhead-ms` (its time, without the upstream's). Figures are compared within the
run, as ratios to chat completions with tracing off.

Run: `make bench-protocols` (table also in bench/results/protocols.md).
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.procs import Servers, free_port

ROOT = Path(__file__).resolve().parents[1]
LOCKGATE = [sys.executable, "-m", "lockgate.cli"]
KEY = "lg-bench-protocols-key-012345"
RESULTS = ROOT / "bench" / "results" / "protocols.md"
ROUNDS = 300
POLICY = """\
providers:
  mock: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: bench}}
models:
  mock: {{targets: [mock/gpt-bench]}}
embeddings:
  embed: {{targets: [mock/text-embedding-bench]}}
cache: {{enabled: false}}
safety: {{injection_action: "off"}}
"""

Body = Callable[[int, dict[str, str]], tuple[str, bytes]]


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _routes() -> dict[str, Body]:
    """Per route: (path, body) for round n; `state` carries the last response id."""
    hello = [{"role": "user", "content": "Say hello in one sentence."}]
    return {
        "chat completions": lambda n, s: (
            "/v1/chat/completions",
            _json({"model": "mock", "messages": hello}),
        ),
        "messages": lambda n, s: (
            "/v1/messages",
            _json({"model": "mock", "max_tokens": 64, "messages": hello}),
        ),
        "responses": lambda n, s: (
            "/v1/responses",
            _json({"model": "mock", "input": "Say hello in one sentence."}),
        ),
        "responses follow-up": lambda n, s: (  # conversations of 10 turns
            "/v1/responses",
            _json(
                {"model": "mock", "input": "And again.", "previous_response_id": s["last"]}
                if n % 10
                else {"model": "mock", "input": "Say hello in one sentence."}
            ),
        ),
        "embeddings (8 inputs)": lambda n, s: (
            "/v1/embeddings",
            _json({"model": "embed", "input": [f"text {i} of {n}" for i in range(8)]}),
        ),
    }


Samples = dict[str, tuple[list[float], list[float]]]


def measure(ports: dict[str, int]) -> dict[str, Samples]:
    """Per configuration, per route: (latencies, overheads); every request goes to both
    gateways in turn, so both see the same machine."""
    conns = {
        label: http.client.HTTPConnection("127.0.0.1", p, timeout=30) for label, p in ports.items()
    }
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    routes = _routes()
    samples: dict[str, Samples] = {label: {name: ([], []) for name in routes} for label in ports}
    states: dict[str, dict[str, str]] = {label: {} for label in ports}
    for n in range(ROUNDS + 20):
        for name, build in routes.items():
            for label, conn in conns.items():
                path, body = build(n, states[label])
                started = time.perf_counter()
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status}: {payload[:200]!r}")
                if name == "responses follow-up":
                    states[label]["last"] = json.loads(payload)["id"]
                if n >= 20:  # warm-up rounds are not counted
                    overhead = float(response.getheader("x-lockgate-overhead-ms", "0"))
                    samples[label][name][0].append(elapsed)
                    samples[label][name][1].append(overhead)
    for conn in conns.values():
        conn.close()
    return samples


def report(off: Samples, on: Samples) -> str:
    base = statistics.median(off["chat completions"][1])
    rows = [
        "| route | p50 latency ms | p50 gateway overhead ms | overhead vs chat | "
        "overhead, tracing on | tracing on vs off |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (latency, overhead) in off.items():
        p50 = statistics.median(overhead)
        traced = statistics.median(on[name][1])
        rows.append(
            f"| {name} | {statistics.median(latency):.2f} | {p50:.3f} | {p50 / base:.2f}x | "
            f"{traced:.3f} | {traced / p50:.2f}x |"
        )
    return (
        "# Protocols: gateway overhead per route\n\n"
        f"{ROUNDS} sequential requests per route and configuration, interleaved; "
        "overhead is the gateway's `x-lockgate-overhead-ms` (time outside the upstream).\n\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Servers(Path(tmp)) as servers:
        mock_port = free_port()
        mock = servers.start(
            "mock", [*LOCKGATE, "mock-upstream", "--port", str(mock_port)], mock_port
        )
        servers.wait_ready(mock, "/_mock/health")
        config = Path(tmp) / "policy.yaml"
        config.write_text(POLICY.format(port=mock_port))
        ports = {}
        for label, tracing in (("off", None), ("on", f"http://127.0.0.1:{mock_port}")):
            port = ports[label] = free_port()
            env = {
                "LOCKGATE_API_KEY": KEY,
                "LOCKGATE_DATA_DIR": str(Path(tmp) / f"data-{label}"),
                "LOCKGATE_LOG_LEVEL": "ERROR",
            }
            if tracing:  # the mock refuses the export; the spans are still made and sent
                env["LOCKGATE_OTLP_ENDPOINT"] = tracing
            gateway = servers.start(
                f"lockgate-{label}",
                [*LOCKGATE, "serve", "--config", str(config), "--port", str(port)],
                port,
                env=env,
            )
            servers.wait_ready(gateway, "/health")
        runs = measure(ports)
        table = report(runs["off"], runs["on"])
    print(table)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
