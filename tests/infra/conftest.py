"""Synthesizes the stack once per test session and context, offline and without bundling the
layer; every synth also runs cdk-nag (infra/app.py), whose findings the tests read back.

aws-cdk-lib runs on jsii, which needs `node`; the repo's Node 22 (scripts/ensure-node.sh) is put
first on PATH when it is there. Without any node these tests fail with that hint rather than
skip (CI installs it), and the rest of the suite still runs: nothing here imports aws_cdk until
a fixture asks for it.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / ".tools" / "node" / "bin"

if NODE_BIN.is_dir() and str(NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# No pip, no network, no asset build: the layer's contents are not what the templates check.
OFFLINE = {"skipBundling": True}


def infra_module(name: str) -> ModuleType:
    """Imports an `infra` module (and so aws_cdk) once node is known to be there."""
    if shutil.which("node") is None:
        pytest.fail("jsii needs node: run scripts/ensure-node.sh (Node 22 into .tools/node)")
    return importlib.import_module(name)


Synth = Callable[..., Any]
Loader = Callable[[str], ModuleType]


@pytest.fixture(scope="session")
def load_infra() -> Loader:
    """`infra_module` as a fixture: test modules cannot import conftest under importlib mode."""
    return infra_module


@pytest.fixture(scope="session")
def synth_stack() -> Synth:
    """(stack, `aws_cdk.assertions.Template`) for extra context, synthesized once per session:
    a synth with cdk-nag takes tens of seconds, so tests share them."""
    app = infra_module("infra.app")
    assertions = importlib.import_module("aws_cdk.assertions")
    synthesized: dict[str, tuple[Any, Any]] = {}

    def run(**context: Any) -> tuple[Any, Any]:
        key = json.dumps(context, sort_keys=True, default=str)
        if key not in synthesized:
            _, stack = app.build_app({**OFFLINE, **context})
            synthesized[key] = (stack, assertions.Template.from_stack(stack))
        return synthesized[key]

    return run


@pytest.fixture(scope="session")
def synth(synth_stack: Synth) -> Synth:
    """The synthesized template for extra context."""

    def run(**context: Any) -> Any:
        return synth_stack(**context)[1]

    return run


@pytest.fixture(scope="session")
def template(synth: Synth) -> Any:
    return synth()


# Everything optional at once, so one more synth covers it: functions and search in a VPC,
# OpenSearch Serverless, an alarm e-mail and an existing provider secret.
VARIANT = {
    "vpc": "true",
    "search": "serverless",
    "alarmEmail": "ops@example.com",
    "providerSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-AbCdEf",
    "bedrockComplexModel": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "bedrockModelIds": "anthropic.claude-x,amazon.nova-y",
    "lwaLayerVersion": "31",
    "throttleRateLimit": "5",
}


@pytest.fixture(scope="session")
def variant_context() -> dict[str, str]:
    return dict(VARIANT)


@pytest.fixture(scope="session")
def variant(synth: Synth) -> Any:
    return synth(**VARIANT)
