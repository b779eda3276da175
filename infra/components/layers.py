"""The Lambda layers every Lockgate function shares.

`CommonLayer` is the core package plus its runtime dependencies and the embedding model files,
built by `scripts/build_artifacts.py` from `requirements/lambda.txt`: the functions themselves
stay a few kilobytes of entry point, so a code change to a handler deploys in seconds and the
package is identical in every function. `PolicyLayer` ships a routing policy file chosen at
deploy time.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.components.bundling import PipLayerBundler, asset_hash, docker_command, python_version

# python3.12 runs on Amazon Linux 2023 (glibc 2.34), which the locked manylinux_2_28 wheels
# (onnxruntime has no others) need; python3.11's Amazon Linux 2 (glibc 2.26) could not load them.
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64

# Where PolicyLayer puts the file inside the function's file system (layers unpack into /opt).
POLICY_PATH = "/opt/lockgate-config/policy.yaml"


class CommonLayer(Construct):
    """`layers/common` as a Python layer: `/opt/python/lockgate` plus its wheels and models."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: Path,
        package: str,
        requirements: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        version = python_version(RUNTIME.name)
        # `requirements` is what the stack expects in the layer; the bundler refuses a lock
        # resolved from anything else.
        bundler = PipLayerBundler(python=version, requirements=requirements)
        code = lambda_.Code.from_asset(
            str(source_dir),
            exclude=["**/__pycache__", "**/*.pyc"],
            # What the layer is built from, not only layers/common: a new lock is a new layer.
            asset_hash=asset_hash(version),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=cdk.BundlingOptions(
                image=RUNTIME.bundling_image,
                command=docker_command(),
                # jsii calls back with the options as one positional struct, not as the
                # keyword arguments of the generated protocol.
                local=cast(cdk.ILocalBundling, bundler),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"{package} and its runtime dependencies",
        )


class PolicyLayer(Construct):
    """A routing policy file from this machine, mounted at POLICY_PATH in every function."""

    def __init__(self, scope: Construct, construct_id: str, *, policy_file: Path) -> None:
        super().__init__(scope, construct_id)
        content = policy_file.read_bytes()
        staging = Path(tempfile.mkdtemp(prefix="lockgate-policy-"))
        target = staging / Path(POLICY_PATH).relative_to("/opt")
        target.parent.mkdir(parents=True)
        shutil.copyfile(policy_file, target)
        self.path = POLICY_PATH
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(staging)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"routing policy {hashlib.sha256(content).hexdigest()[:12]}",
        )
