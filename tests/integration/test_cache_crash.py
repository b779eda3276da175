"""`kill -9` while streamed answers are being cached: after each restart on the same data
directory the server starts, and every cached answer it serves is whole — a stream cut by the
kill is never replayed as an answer, and answers cached before the kill are still served.

Real: `lockgate serve` in a subprocess (embedded SQLite exact cache, embedded vector index,
the real MiniLM embedder for the semantic cache), killed with SIGKILL at random points in a
bounded loop; the mock upstream; httpx as the caller."""

from __future__ import annotations

import random
import signal
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.servers import API_KEY, free_port, mock_policy, serve_process

ROUNDS = 3
STREAMS = 8
HEADERS = {"authorization": f"Bearer {API_KEY}"}


def _question(n: int) -> str:
    return f"What is the opening time of store number {n} on public holidays?"


def _stream(base: str, n: int, delay: float) -> None:
    threading.Event().wait(delay)
    body = {
        "model": "cached",
        "stream": True,
        "messages": [{"role": "user", "content": _question(n)}],
    }
    try:
        with httpx.stream(
            "POST", f"{base}/v1/chat/completions", json=body, headers=HEADERS, timeout=30
        ) as response:
            for _ in response.iter_bytes():
                pass
    except httpx.HTTPError:
        pass  # the server was killed under this stream


def _answer(client: httpx.Client, model: str, n: int) -> tuple[str, str]:
    body = {"model": model, "messages": [{"role": "user", "content": _question(n)}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content, response.headers.get("x-lockgate-cache", "")


@pytest.mark.slow
def test_cached_answers_survive_kill_9_whole(upstream: str, tmp_path: Path) -> None:
    target = "mock/crash+tps=40+tokens=40"  # about a second per answer
    policy = mock_policy(
        upstream,
        {
            "cached": {"targets": [target]},
            "uncached": {"targets": [target], "cache": {"enabled": False}},
        },
        cache={"enabled": True, "ttl_s": 3600},
    )
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    draw = random.Random(11)
    asked: list[int] = []
    finished: list[int] = []
    for round_ in range(ROUNDS):
        server = serve_process(tmp_path, port)
        try:
            with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
                first = round_ * 100
                _answer(client, "cached", first)  # answers cached well before the kill
                _stream(base, first + 50, 0)
                finished.extend((first, first + 50))
                threads = [
                    threading.Thread(target=_stream, args=(base, first + 1 + i, 0.25 * i))
                    for i in range(STREAMS)
                ]
                for thread in threads:
                    thread.start()
                asked.extend(first + 1 + i for i in range(STREAMS))
                threading.Event().wait(draw.uniform(1.2, 2.4))
            server.send_signal(signal.SIGKILL)
            for thread in threads:
                thread.join(60)
        finally:
            server.kill()
            server.wait(30)

    server = serve_process(tmp_path, port)
    try:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
            served: dict[int, str] = {}
            for n in finished + asked:
                whole, _ = _answer(client, "uncached", n)
                cached, how = _answer(client, "cached", n)
                served[n] = how
                assert cached == whole, f"question {n} ({how}) was not served whole"
    finally:
        server.terminate()
        server.wait(30)
    assert all(served[n] == "exact" for n in finished), served
    assert any(served[n] == "miss" for n in asked), "no stream was cut by the kills"
