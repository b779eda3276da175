"""Synthesizes the stack once per module, offline and without bundling the layer.

aws-cdk-lib runs on jsii, which needs `node`; the repo's Node 22 (scripts/ensure-node.sh) is put
first on PATH when it is there. Without any node these tests fail with that hint rather than
skip (CI installs it), and the rest of the suite still runs: nothing here imports aws_cdk until
a fixture asks for it.
"""

from __future__ import annotations

import importlib
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


@pytest.fixture(scope="module")
def synth() -> Synth:
    """Synthesizes with extra context into an `aws_cdk.assertions.Template`."""
    app = infra_module("infra.app")
    assertions = importlib.import_module("aws_cdk.assertions")

    def run(**context: Any) -> Any:
        _, stack = app.build_app({**OFFLINE, **context})
        return assertions.Template.from_stack(stack)

    return run


@pytest.fixture(scope="module")
def template(synth: Synth) -> Any:
    return synth()
