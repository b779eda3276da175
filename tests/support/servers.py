"""Run the gateway (uvicorn) and the mock upstream (aiohttp) for real, on loopback ports."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from aiohttp import web
from lockgate.http_server import HeadWithBodyProtocol
from lockgate.mock_upstream import MockSettings
from lockgate.mock_upstream import create_app as create_mock_app
from lockgate.settings import Settings

API_KEY = "lg-test-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free port of 127.0.0.1, on the running loop; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextmanager
def mock_upstream(settings: MockSettings | None = None) -> Iterator[str]:
    """Yields the mock's base URL (`http://127.0.0.1:PORT`)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_mock_app(settings or MockSettings()), access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class RunningGateway:
    base_url: str
    api_key: str
    app: Any

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"


@contextmanager
def gateway(
    policy: dict[str, Any] | None, data_dir: Path, **settings: Any
) -> Iterator[RunningGateway]:
    """Serves the real app with uvicorn in a thread, built from a policy dict (written to a
    YAML file, as a user would) or the embedded default when `policy` is None."""
    from lockgate.app import create_app
    from lockgate.bootstrap import build

    config = None
    if policy is not None:
        config = data_dir / "policy.yaml"
        config.write_text(yaml.safe_dump(policy), encoding="utf-8")
    port = free_port()
    resolved = Settings(config=config, api_key=API_KEY, data_dir=data_dir, port=port, **settings)
    app = create_app(container=build(resolved))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            http=HeadWithBodyProtocol,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    try:
        yield RunningGateway(f"http://127.0.0.1:{port}", API_KEY, app)
    finally:
        server.should_exit = True
        thread.join(30)


def access_records(
    caplog: Any, count: int = 1, *, timeout_s: float = 5.0
) -> list[logging.LogRecord]:
    """Every captured record, once `count` access lines are among them: the gateway writes a
    request's line just after its response has gone out, so the caller may be first."""
    deadline = time.monotonic() + timeout_s
    while sum(r.name == "lockgate.access" for r in caplog.records) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return list(caplog.records)


def mock_policy(upstream: str, models: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A policy whose providers are the mock upstream, over both wire formats.

    Caching is off unless the test turns it on, so repeated requests reach the upstream."""
    policy: dict[str, Any] = {
        "providers": {
            "mock": {
                "kind": "openai",
                "base_url": f"{upstream}/v1",
                "api_key": "sk-upstream-secret-1234",
            },
            "mockant": {
                "kind": "anthropic",
                "base_url": upstream,
                "api_key": "sk-ant-upstream-secret-1234",
            },
        },
        "models": models,
        "cache": {"enabled": False},
    }
    policy.update(extra)
    return policy


def upstream_requests(upstream: str, containing: str) -> list[dict[str, Any]]:
    """Bodies the mock upstream received (`GET /_mock/requests`) whose JSON mentions a marker."""
    recorded: list[dict[str, Any]] = httpx.get(f"{upstream}/_mock/requests").json()
    return [r for r in recorded if containing in str(r["body"])]


_ROOT = Path(__file__).resolve().parents[2]


def serve_process(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """`lockgate serve` in a subprocess on `data_dir` (its `policy.yaml`, its `data/`), ready to
    answer: for tests that kill it and start it again on the same files."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{_ROOT / 'layers' / 'common'}:{_ROOT}",
        "LOCKGATE_API_KEY": API_KEY,
        "LOCKGATE_DATA_DIR": str(data_dir / "data"),
        "LOCKGATE_CONFIG": str(data_dir / "policy.yaml"),
        "LOCKGATE_WARM_LOCAL_MODEL": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lockgate.cli", "serve", "--port", str(port)],
        cwd=data_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "server did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
