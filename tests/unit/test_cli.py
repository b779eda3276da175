"""The `lockgate` command as a user runs it: a real process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

LOCKGATE = [sys.executable, "-m", "lockgate.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOCKGATE, *args], capture_output=True, text=True, timeout=60, env=env)


def test_bad_config_is_refused_at_start_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers: {oa: {kind: openai}}\n"
        "models: {fast: {targets: [{provider: opneai, model: gpt-4o-mini}]}}\n"
    )
    result = run("serve", "--config", str(bad), "--port", str(free_port()))
    assert result.returncode == 2
    assert "models.fast.targets.0.provider" in result.stderr and "opneai" in result.stderr
    check = run("check-config", str(bad))
    assert check.returncode == 2 and "opneai" in check.stderr


def test_check_config_shows_each_alias_strategy(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "providers: {oa: {kind: openai}, local: {kind: local}}\n"
        "models:\n"
        "  fast: {targets: [oa/gpt-4o-mini, local/smollm2]}\n"
        "  spread:\n"
        "    strategy: weighted\n"
        "    targets: [{provider: oa, model: a, weight: 3}, {provider: oa, model: b}]\n"
        "embeddings: {minilm: {targets: [local/all-MiniLM-L6-v2]}}\n"
    )
    result = run("check-config", str(good))
    assert result.returncode == 0, result.stderr
    assert "2 models, 1 embedding models" in result.stdout
    assert "spread: weighted: oa/a (weight 3), oa/b (weight 1)" in result.stdout
    assert "fast: fallback: oa/gpt-4o-mini, local/smollm2" in result.stdout


def test_config_from_environment_is_refused_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {}\nmodels: {}\n")
    env = {**os.environ, "LOCKGATE_CONFIG": str(bad), "LOCKGATE_DATA_DIR": str(tmp_path)}
    result = run("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2 and "providers" in result.stderr


def test_serve_prints_a_key_on_first_start_and_requires_it(tmp_path: Path, upstream: str) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text(
        f"providers: {{m: {{kind: openai, base_url: '{upstream}/v1', api_key: x}}}}\n"
        "models: {fast: {targets: [m/gpt]}}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env["LOCKGATE_DATA_DIR"] = str(tmp_path / "data")
    server = subprocess.Popen(
        [*LOCKGATE, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        banner = "".join(server.stdout.readline() for _ in range(4))
        match = re.search(r"(lg-[A-Za-z0-9_\-]+)", banner)
        assert match, banner
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        chat = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{base}/v1/chat/completions", json=chat).status_code == 401
        ok = httpx.post(
            f"{base}/v1/chat/completions",
            json=chat,
            headers={"authorization": f"Bearer {match[1]}"},
        )
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.parametrize("command", ["serve", "mock-upstream", "check-config"])
def test_help_lists_options(command: str) -> None:
    assert run(command, "--help").returncode == 0
