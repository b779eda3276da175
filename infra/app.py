"""CDK entry point: `cdk synth`/`cdk deploy` run it (cdk.json), and so can `python infra/app.py`.

Run directly, without the CLI, it reads cdk.json's context itself, so feature flags and
defaults are the same either way; `CDK_OUTDIR` then says where the cloud assembly goes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Running as a script puts infra/ first on sys.path; the repo root is what `infra.*` needs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "infra"]
sys.path.insert(0, str(REPO))

# jsii spawns `node`; prefer the repo's Node 22 (scripts/ensure-node.sh) over an older system one.
_NODE_BIN = REPO / ".tools" / "node" / "bin"
if _NODE_BIN.is_dir() and str(_NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{_NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.settings import Settings  # noqa: E402
from infra.stack import LockgateStack  # noqa: E402

BUNDLING_STACKS = "aws:cdk:bundling-stacks"


def cdk_json_context(repo: Path = REPO) -> dict[str, Any]:
    """The `context` block of cdk.json; the CLI's own context, when present, overrides it."""
    context: dict[str, Any] = json.loads((repo / "cdk.json").read_text())["context"]
    return context


def build_app(context: dict[str, Any] | None = None) -> tuple[cdk.App, LockgateStack]:
    """The app and its stack, for the CLI and for tests (which pass extra context)."""
    app = cdk.App(context={**cdk_json_context(), **(context or {})})
    # Every synth (and so every deploy) runs cdk-nag: an unsuppressed finding is an error
    # annotation, which `cdk deploy` refuses and the tests fail on.
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    settings = Settings.from_node(app.node)
    if settings.skip_bundling:
        # `-c skipBundling=true`: synthesize the template without building the layer (no pip,
        # no network); the CLI always asks for bundling, so this overrides its choice.
        app.node.set_context(BUNDLING_STACKS, [])
    stack = LockgateStack(
        app,
        settings.stack_name,
        settings=settings,
        description="Lockgate LLM gateway",
        # Environment-agnostic: synthesizes offline; region and account come from the deploy.
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
