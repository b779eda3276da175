"""`kill -9` right after answering loses no usage (issue 9.8): the ledger journals each request
before it batches it, and the next start replays what was not yet written.

Real: `lockgate serve` in a subprocess (embedded stores), killed with SIGKILL, restarted on the
same data directory; the mock upstream; usage read back through `GET /v1/usage`."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.servers import API_KEY, free_port, mock_policy, serve_process

REQUESTS = 30


@pytest.mark.slow
def test_usage_survives_kill_9(upstream: str, tmp_path: Path) -> None:
    policy = mock_policy(upstream, {"fast": {"targets": ["mock/good"]}})
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    port = free_port()
    headers = {"authorization": f"Bearer {API_KEY}"}
    server = serve_process(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            for n in range(REQUESTS):
                body = {"model": "fast", "messages": [{"role": "user", "content": f"q {n}"}]}
                assert client.post("/v1/chat/completions", json=body).status_code == 200
        server.send_signal(signal.SIGKILL)
    finally:
        server.kill()
        server.wait(30)
    journal = tmp_path / "data" / "usage-journal"
    assert any(f.stat().st_size for f in journal.iterdir())  # something was left unwritten
    server = serve_process(tmp_path, port)
    try:
        usage = httpx.get(f"http://127.0.0.1:{port}/v1/usage", headers=headers).json()
    finally:
        server.terminate()
        server.wait(30)
    assert usage["requests"] == REQUESTS
