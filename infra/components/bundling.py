"""Builds the shared layer's contents on this machine instead of in Docker.

CDK bundles assets in a Docker container by default; machines here have no Docker, so the layer
is assembled with pip's cross-platform download mode: wheels for Lambda's Python 3.12 on
manylinux x86_64, whatever the local interpreter is. The Docker command is still given, so a
machine with Docker and no pip-capable Python could bundle the same layer.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii

LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_PLATFORM = "manylinux2014_x86_64"

# Already in the Lambda Python runtime; another copy would cost ~80 MB of the 250 MB budget.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})

# Laptop-only or far too large for Lambda: a layer containing one of these is refused.
FORBIDDEN = frozenset(
    {"torch", "llama-cpp-python", "nvidia-cublas-cu12", "triton", "pytest", "moto", "mypy", "ruff"}
)

# Lambda allows 250 MB unzipped for a function plus its layers; leave room for the function
# code and the Lambda Web Adapter layer.
LAYER_BUDGET_BYTES = 220 * 1024 * 1024


def project_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(pyproject: Path, extras: Sequence[str] = ("aws",)) -> list[str]:
    """The package's runtime dependencies plus the given extras, read from pyproject.toml.

    Reading them rather than listing them here keeps the layer in step with the package; the
    `local` extra (llama.cpp) is never included.
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        requirements.extend(optional.get(extra, []))
    selected: list[str] = []
    seen: set[str] = set()
    for requirement in requirements:
        name = project_name(requirement)
        if name in FORBIDDEN:
            raise ValueError(f"{name} must not go into a Lambda layer (from {pyproject})")
        if name in RUNTIME_PROVIDED or requirement in seen:
            continue
        seen.add(requirement)
        selected.append(requirement)
    return selected


def pip_install_args(target: str, requirements: Sequence[str]) -> list[str]:
    """pip arguments that fetch Lambda-compatible wheels only (never builds from source)."""
    return [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # .pyc from the local interpreter would be the wrong version anyway
        "--target",
        target,
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        *requirements,
    ]


def docker_command(package: str, requirements: Sequence[str]) -> list[str]:
    """The same build inside CDK's Python bundling image, for machines that have Docker."""
    install = shlex.join(["pip", *pip_install_args("/asset-output/python", requirements)])
    copy = shlex.join(["cp", "-r", f"/asset-input/{package}", "/asset-output/python/"])
    return ["bash", "-c", f"{install} && {copy}"]


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def installed_projects(site: Path) -> set[str]:
    return {
        project_name(meta.name.split("-")[0]) for meta in site.glob("*.dist-info") if meta.is_dir()
    }


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundler:
    """Assembles `python/<package>` plus its wheels, as Lambda expects a Python layer."""

    def __init__(
        self,
        *,
        package_dir: Path,
        requirements: Sequence[str],
        budget_bytes: int = LAYER_BUDGET_BYTES,
    ) -> None:
        self.package_dir = package_dir
        self.requirements = list(requirements)
        self.budget_bytes = budget_bytes

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        site = Path(output_dir) / "python"
        site.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", *pip_install_args(str(site), self.requirements)]
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not assemble the layer (exit {result.returncode}): "
                f"{shlex.join(command)}"
            )
        # Console scripts point at this machine's interpreter; nothing in Lambda runs them.
        shutil.rmtree(site / "bin", ignore_errors=True)
        shutil.copytree(
            self.package_dir,
            site / self.package_dir.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        self.check(site)
        return True

    def check(self, site: Path) -> None:
        """Refuses a layer that could not deploy or would carry laptop-only weight."""
        forbidden = installed_projects(site) & FORBIDDEN
        if forbidden:
            raise RuntimeError(f"layer pulled in {sorted(forbidden)} through a dependency")
        size = tree_size(site)
        if size > self.budget_bytes:
            raise RuntimeError(
                f"layer is {size / 2**20:.0f} MiB unzipped, over the "
                f"{self.budget_bytes / 2**20:.0f} MiB budget (Lambda's limit is 250 MB)"
            )
