"""functions/orchestrate/run.sh: the command the Lambda Web Adapter starts and then polls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / "functions" / "orchestrate" / "run.sh"


def fake_python(bin_dir: Path, record: Path) -> None:
    """A `python` that records how it was called instead of starting a server."""
    bin_dir.mkdir()
    script = bin_dir / "python"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$PYTHONPATH" > "{record}"\n'
        f'for arg in "$@"; do printf "%s\\n" "$arg" >> "{record}"; done\n'
    )
    script.chmod(0o755)


def run_recorded(tmp_path: Path, **env: str) -> tuple[str, list[str]]:
    record = tmp_path / "record"
    fake_python(tmp_path / "bin", record)
    base = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "LAMBDA_TASK_ROOT": "/var/task"}
    subprocess.run([str(RUN_SH)], env={**base, **env}, check=True, timeout=30)
    pythonpath, *args = record.read_text().splitlines()
    return pythonpath, args


def test_is_executable_because_the_adapter_runs_it_directly() -> None:
    assert os.access(RUN_SH, os.X_OK)


def test_starts_uvicorn_with_the_app_protocol_and_adapter_port(tmp_path: Path) -> None:
    pythonpath, args = run_recorded(tmp_path, AWS_LWA_PORT="9123", LOCKGATE_LOG_LEVEL="WARNING")
    assert args[:2] == ["-m", "uvicorn"]
    assert args[args.index("--factory") + 1] == "orchestrate_app:create_app"
    assert args[args.index("--http") + 1] == "lockgate.http_server:HeadWithBodyProtocol"
    assert args[args.index("--port") + 1] == "9123"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--log-level") + 1] == "warning"
    assert pythonpath.split(":")[:2] == ["/var/task", "/opt/python"]


@pytest.mark.parametrize(("env", "port"), [({"PORT": "9001"}, "9001"), ({}, "8080")])
def test_port_falls_back_to_port_then_8080(tmp_path: Path, env: dict[str, str], port: str) -> None:
    _, args = run_recorded(tmp_path, **env)
    assert args[args.index("--port") + 1] == port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serves_health_for_the_readiness_check(tmp_path: Path) -> None:
    """The real script and app: what the adapter polls before it forwards any event."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"  # this interpreter, with its venv (a symlink would lose it)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_LWA_PORT": str(port),
        "LAMBDA_TASK_ROOT": str(RUN_SH.parent),
        "PYTHONPATH": str(REPO / "layers" / "common"),
        "LOCKGATE_DATA_DIR": str(tmp_path / "data"),
        "LOCKGATE_WARM_LOCAL_MODEL": "false",
    }
    server = subprocess.Popen([str(RUN_SH)], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{port}/health"
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                    assert json.loads(response.read())["status"] == "ok"
                    break
            except OSError:
                assert server.poll() is None, "uvicorn exited before it answered /health"
                assert time.monotonic() < deadline, "no answer on /health within 60 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
