"""Shared set-up for the run-from-artifact tests: the synthesized template in moto's server, the
mock upstream as the LLM provider, and a routing policy that uses it."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.artifacts.harness import EmulatedStack
from tests.support.servers import free_port, mock_policy

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / ".tools" / "node" / "bin"


def synthesized_template() -> dict[str, Any]:
    """The stack's CloudFormation template, synthesized offline (the layer's bundling skipped:
    the artifact under test is built by the session fixture instead)."""
    if NODE_BIN.is_dir() and str(NODE_BIN) not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    assert shutil.which("node"), "jsii needs node: run scripts/ensure-node.sh"
    from aws_cdk.assertions import Template

    from infra.app import build_app

    _, stack = build_app({"skipBundling": True})
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return template


@contextmanager
def moto_stack(template: dict[str, Any]) -> Iterator[EmulatedStack]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's backends are per process, not per server: start from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    try:
        yield EmulatedStack(template, endpoint).create()
    finally:
        server.stop()


PROVIDER_KEY_ENV = "MOCK_UPSTREAM_KEY"


def write_policy(path: Path, upstream: str) -> Path:
    """The mock upstream as the only provider, its key named by `api_key_env` and so read from
    the provider secret: the upstream refuses a request without one."""
    policy = mock_policy(
        upstream, {"fast": {"targets": ["mock/gpt-fast"]}}, tiers={"simple": "fast"}
    )
    policy["providers"]["mock"].pop("api_key")
    policy["providers"]["mock"]["api_key_env"] = PROVIDER_KEY_ENV
    policy["cache"] = {"enabled": True}
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    return path


def store_provider_key(stack: EmulatedStack, function: str) -> None:
    """Puts the upstream's key in the secret the function's environment names, as an operator
    would after `cdk deploy`."""
    arn = stack.environment(function)["LOCKGATE_PROVIDER_SECRET_ARN"]
    stack.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({PROVIDER_KEY_ENV: "sk-from-secrets-manager"})
    )
