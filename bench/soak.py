"""Soak: a mixed workload against a real `lockgate serve` for a while, watching the server
process for growth in memory (RSS) and open file descriptors.

The mix is what a day of traffic holds: buffered and streamed chats on both routes, exact cache
hits, failing upstreams that fall back (a 503, a stream cut mid-answer, a stall), clients that
hang up mid-stream, malformed bodies, bad keys and document uploads. Leaks show as a line that
keeps climbing after the warm-up, so the table reports RSS and descriptors after the warm-up
and at the end, and the growth per thousand requests between them.

    make bench-soak                     # 120 s; SOAK_SECONDS=600 make bench-soak for longer
    .venv/bin/python -m bench.soak
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "soak.md"
KEY = "lg-soak-key-0123456789abcdef"
WARMUP_S = 15.0
CLIENTS = 8


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _policy(upstream: str) -> dict[str, object]:
    mock = {"kind": "openai", "base_url": f"{upstream}/v1", "api_key": "soak"}
    mockant = {"kind": "anthropic", "base_url": upstream, "api_key": "soak"}
    return {
        "providers": {"mock": mock, "mockant": mockant},
        "models": {
            "fast": {"targets": ["mock/good+tokens=32"]},
            "ant": {"targets": ["mockant/good+tokens=32"]},
            "flaky": {"targets": ["mock/bad+status=503", "mock/good"]},
            "cut": {"targets": ["mock/bad+cut_after=4", "mock/good"], "stream_continuation": True},
            "stall": {"targets": ["mock/bad+stall_after=2", "mock/good"]},
        },
        "timeouts": {"first_token_s": 2, "between_chunks_s": 0.3, "total_s": 10},
        "retry": {"attempts": 1},
        "cooldown": {"failures": 1000, "seconds": 1},
        "cache": {"enabled": True, "semantic": False},
        "safety": {"injection_action": "off"},
    }


@dataclass
class Sample:
    at: float
    requests: int
    rss_mb: float
    fds: int


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


def _probe(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def _one(client: httpx.AsyncClient, chooser: random.Random, n: int, tally: Tally) -> None:
    kind = chooser.choices(
        ["chat", "stream", "anthropic", "cached", "flaky", "cut", "stall", "hangup", "bad",
         "badkey", "upload"],
        weights=[30, 20, 10, 10, 5, 5, 2, 5, 5, 4, 4],
    )[0]  # fmt: skip
    prompt = f"soak request {n}: what is {n % 97} plus {n % 13}?"
    messages = [{"role": "user", "content": prompt if kind != "cached" else "the cached one"}]
    body: dict[str, object] = {"model": "fast", "messages": messages, "max_tokens": 32}
    path, headers = "/v1/chat/completions", {"authorization": f"Bearer {KEY}"}
    if kind in ("stream", "hangup", "cut", "stall"):
        body["stream"] = True
    if kind in ("flaky", "cut", "stall"):
        body["model"] = kind
    if kind == "anthropic":
        path, body["model"] = "/v1/messages", "ant"
    try:
        if kind == "bad":
            response = await client.post(
                path, content=b'{"model": "fast", "messages": [', headers=headers
            )
        elif kind == "badkey":
            response = await client.post(path, json=body, headers={"authorization": "Bearer x"})
        elif kind == "upload":
            response = await client.post(
                "/v1/collections/soak/documents",
                params={"filename": f"note-{n % 50}.md"},
                content=f"# Note {n}\n\nSoak note number {n}.\n".encode(),
                headers=headers,
            )
        elif body.get("stream"):
            async with client.stream("POST", path, json=body, headers=headers) as response:
                async for _ in response.aiter_bytes():
                    if kind == "hangup":
                        break
        else:
            response = await client.post(path, json=body, headers=headers)
        tally.statuses[f"{kind} {response.status_code}"] += 1
    except httpx.HTTPError as exc:
        tally.statuses[f"{kind} {type(exc).__name__}"] += 1
    tally.requests += 1


async def _drive(base: str, pid: int, seconds: float) -> tuple[Tally, list[Sample]]:
    tally, samples = Tally(), []
    stop = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def worker(seed: int) -> None:
        chooser = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.monotonic() < stop:
                await _one(client, chooser, next(counter), tally)

    async def watch() -> None:
        started = time.monotonic()
        while time.monotonic() < stop:
            rss, fds = _probe(pid)
            samples.append(Sample(time.monotonic() - started, tally.requests, rss, fds))
            await asyncio.sleep(1.0)

    await asyncio.gather(watch(), *(worker(seed) for seed in range(CLIENTS)))
    return tally, samples


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _report(seconds: float, tally: Tally, samples: list[Sample]) -> str:
    warm = next((s for s in samples if s.at >= min(WARMUP_S, seconds / 4)), samples[0])
    end = samples[-1]
    peak = max(s.rss_mb for s in samples)
    per_k = max(1, end.requests - warm.requests) / 1000
    failures = sum(n for status, n in tally.statuses.items() if status.endswith(" 500"))
    lines = [
        f"# Soak: {seconds:.0f} s, {CLIENTS} clients, {tally.requests} requests",
        "",
        "| measure | after warm-up | end | growth per 1k requests |",
        "|---|---|---|---|",
        f"| RSS (MB) | {warm.rss_mb:.1f} | {end.rss_mb:.1f} (peak {peak:.1f}) |"
        f" {(end.rss_mb - warm.rss_mb) / per_k:+.2f} |",
        f"| open file descriptors | {warm.fds} | {end.fds} | {(end.fds - warm.fds) / per_k:+.2f} |",
        "",
        f"Gateway bugs (500): {failures}.",
        "",
        "| request kind and outcome | count |",
        "|---|---|",
        *(f"| {status} | {n} |" for status, n in sorted(tally.statuses.items())),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "120"))
    with tempfile.TemporaryDirectory(prefix="lockgate-soak-") as tmp:
        data = Path(tmp)
        mock_port, port = _port(), _port()
        upstream = f"http://127.0.0.1:{mock_port}"
        (data / "policy.yaml").write_text(yaml.safe_dump(_policy(upstream)), encoding="utf-8")
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}",
            "LOCKGATE_API_KEY": KEY,
            "LOCKGATE_DATA_DIR": str(data / "data"),
            "LOCKGATE_CONFIG": str(data / "policy.yaml"),
            "LOCKGATE_WARM_LOCAL_MODEL": "false",
            "LOCKGATE_LOG_LEVEL": "WARNING",
        }
        cli = [sys.executable, "-m", "lockgate.cli"]
        quiet = {"cwd": data, "env": env, "stdout": subprocess.DEVNULL}
        mock = subprocess.Popen([*cli, "mock-upstream", "--port", str(mock_port)], **quiet)
        server = subprocess.Popen([*cli, "serve", "--port", str(port)], **quiet)  # type: ignore[call-overload]
        try:
            _wait_ready(f"{upstream}/_mock/health", mock)
            _wait_ready(f"http://127.0.0.1:{port}/health", server)
            tally, samples = asyncio.run(_drive(f"http://127.0.0.1:{port}", server.pid, seconds))
        finally:
            for process in (server, mock):
                process.terminate()
                process.wait(30)
    report = _report(seconds, tally, samples)
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
