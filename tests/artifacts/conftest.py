"""Builds the Lambda artifacts once per session, with scripts/build_artifacts.py as `make
artifacts` and `cdk synth` run it (a build is reused while nothing it reads has changed; pip's
download cache lives in build/artifacts/pip-cache, so reruns and CI's second build are fast).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def load_build_script() -> ModuleType:
    name = "lockgate_build_artifacts"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "build_artifacts.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def artifacts() -> ModuleType:
    return load_build_script()


@pytest.fixture(scope="session")
def lambda_build(artifacts: ModuleType) -> Path:
    """The artifacts for Lambda's Python (3.12), exactly what `cdk deploy` uploads."""
    out = artifacts.DEFAULT_OUT / f"py{artifacts.LAMBDA_PYTHON}"
    artifacts.build(out, artifacts.LAMBDA_PYTHON)
    return out


@pytest.fixture(scope="session")
def local_build(artifacts: ModuleType) -> Path:
    """The same lock built for this interpreter, so the handlers can run here (this machine has
    no Python 3.12); only the compiled wheels differ from the Lambda build."""
    out = artifacts.DEFAULT_OUT / f"py{LOCAL_PYTHON}"
    artifacts.build(out, LOCAL_PYTHON)
    return out
