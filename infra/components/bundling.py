"""Builds the shared layer's contents on this machine instead of in Docker.

CDK bundles assets in a Docker container by default; machines here have no Docker, so the layer
comes from `scripts/build_artifacts.py`, the same build `make artifacts` and the artifact tests
run: locked, hash-checked wheels for Lambda's Python on manylinux x86_64, whatever the local
interpreter is. A build is reused while nothing it reads has changed, so a synth after the tests
costs a copy.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import jsii

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = REPO / "scripts" / "build_artifacts.py"


def _load_build_script() -> ModuleType:
    """scripts/ is not a package; its module is loaded by path (and registered, for its
    dataclasses)."""
    name = "lockgate_build_artifacts"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


artifacts = _load_build_script()
project_name = artifacts.project_name
runtime_requirements = artifacts.runtime_requirements
FORBIDDEN: frozenset[str] = artifacts.FORBIDDEN
RUNTIME_PROVIDED: frozenset[str] = artifacts.RUNTIME_PROVIDED


def python_version(runtime_name: str) -> str:
    """`python3.12` -> `3.12`."""
    if not runtime_name.startswith("python3."):
        raise ValueError(f"not a Python runtime: {runtime_name}")
    return runtime_name.removeprefix("python")


def docker_command() -> list[str]:
    """CDK requires an image command; the layer is only ever built by the build script (it also
    adds the model files and prunes), so the container path refuses rather than build another
    layer."""
    message = "build the layer with `make artifacts` (scripts/build_artifacts.py); needs pip"
    return ["bash", "-c", f"echo '{message}' >&2; exit 1"]


def asset_hash(version: str) -> str:
    """Changes with anything the layer is built from: the package, the locks, the build script."""
    digest: str = artifacts.layer_digest(version)
    return digest


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundler:
    """Copies the built layer's `python/` into CDK's asset output, building it when stale."""

    def __init__(
        self, *, python: str, requirements: Sequence[str], out: Path | None = None
    ) -> None:
        self.python = python
        self.requirements = list(requirements)
        self.out = out or artifacts.DEFAULT_OUT / f"py{python}"

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        if not artifacts.lock_is_current(self.requirements):
            raise RuntimeError(
                "requirements/lambda.txt was resolved from other requirements than the "
                "layer's (pyproject.toml changed?): run `make lock`"
            )
        sizes = artifacts.build(self.out, self.python)
        problems = artifacts.over_limits(sizes)
        if problems:
            raise RuntimeError("the Lambda artifacts are over the limits: " + "; ".join(problems))
        shutil.copytree(self.out / "layer" / "python", Path(output_dir) / "python")
        return True
