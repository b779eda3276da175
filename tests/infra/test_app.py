"""`infra/app.py` as the CDK CLI runs it: a script, from the repo root, with cdk.json's context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def test_cdk_json_runs_the_app_from_the_repo_root() -> None:
    config = json.loads((REPO / "cdk.json").read_text())
    assert config["app"].endswith("infra/app.py")
    assert config["context"]["lwaLayerVersion"] >= 30


def test_script_synthesizes_offline_into_cdk_outdir(
    tmp_path: Path, load_infra: Callable[[str], ModuleType], template: Any
) -> None:
    """The one synth outside the session's cache: the script must give the same resources as
    the in-process stack the other tests check."""
    load_infra("infra.settings")  # fails with the node hint when node is missing
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"skipBundling": "true"}),
    }
    subprocess.run([sys.executable, "infra/app.py"], cwd=REPO, env=env, check=True, timeout=240)
    produced = json.loads((tmp_path / "Lockgate.template.json").read_text())
    types = {resource["Type"] for resource in produced["Resources"].values()}
    assert {
        "AWS::ApiGateway::RestApi",
        "AWS::Lambda::Function",
        "AWS::ApiGateway::UsagePlan",
    } <= types
    # cdk.json's feature flags applied even without the CLI.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "Lockgate" in manifest["artifacts"]
    assert set(produced["Resources"]) == set(template.to_json()["Resources"])
