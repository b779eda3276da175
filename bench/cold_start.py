"""Cold start of each Lambda entry module: the import Lambda's init phase runs, and what the first
invocation then pays, each sample in a fresh interpreter.

    python -m bench.cold_start [--samples 7]

Imports come from the built artifact for this interpreter (`make artifacts` output for the
local Python, laid out as /var/task + /opt/python, with `python -I -S`) when it exists, else
from the checkout (functions/<name> + layers/common on the dev venv). The entry modules as they
were at `main` are measured in the same run, on the same layer, so the comparison is a ratio
of one machine's state. Target: importing each entry module <= 300 ms.

"First use" is what the deferred work costs on the first invocation: building the app and its
stores (gateway: a GET /health through Mangum on the embedded backend; orchestrate: uvicorn's
call of the app factory). Ingest's first use needs its AWS services, the fail-over attempt's a
provider; neither is measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "cold_start.md"
TARGET_MS = 300.0
ENTRIES = (  # (function, its code directory, its entry module)
    ("gateway", "gateway", "handler"),
    ("orchestrate", "orchestrate", "orchestrate_app"),
    ("ingest", "ingest", "handler"),
    ("attempt", "orchestrate", "attempt"),
)
LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"

_PROBE = """
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
start = time.perf_counter()
module = __import__(sys.argv[2])
imported = time.perf_counter()
first = None
if sys.argv[3] == "gateway":
    event = {"resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {},
             "multiValueHeaders": {}, "queryStringParameters": None,
             "multiValueQueryStringParameters": None, "pathParameters": None,
             "stageVariables": None, "body": None, "isBase64Encoded": False,
             "requestContext": {"resourcePath": "/health", "httpMethod": "GET",
                                "stage": "prod", "identity": {"sourceIp": "203.0.113.7"}}}
    assert module.handler(event, None)["statusCode"] == 200
    first = time.perf_counter() - imported
elif sys.argv[3] == "orchestrate" and hasattr(module, "create_app"):
    module.create_app()
    first = time.perf_counter() - imported
print(json.dumps({"import": imported - start, "first": first}))
"""


def layout() -> tuple[list[str], str, list[str], Path | None]:
    """(python command, where from, stdlib-only flags, build dir or None)."""
    build = REPO / "build" / "artifacts" / f"py{LOCAL}"
    if (build / "layer" / "python" / "lockgate").is_dir():
        refresh(build)
        base = str(Path(sys.base_prefix) / "bin" / f"python{LOCAL}")
        return [base, "-I", "-S"], f"artifact {build.relative_to(REPO)}", [], build
    return [sys.executable, "-I"], "checkout + dev venv", [], None


def refresh(build: Path) -> None:
    """Brings the artifact up to date with the checkout (copies lockgate and the handlers when
    only they changed), so the numbers are of the code as it is."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "lockgate_build_artifacts", REPO / "scripts" / "build_artifacts.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    script.build(build, LOCAL)


def sample(
    command: list[str], path: list[str], module: str, function: str, env: dict[str, str]
) -> dict[str, float | None]:
    result = subprocess.run(
        [*command, "-c", _PROBE, json.dumps(path), module, function],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{function}: {result.stderr[-2000:]}")
    measured: dict[str, float | None] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def old_entries(work: Path) -> dict[str, Path]:
    """The entry modules as committed on `main`, for the before/after ratio."""
    dirs: dict[str, Path] = {}
    for function, directory, module in ENTRIES:
        shown = subprocess.run(
            ["git", "show", f"main:functions/{directory}/{module}.py"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            target = work / "main" / function
            target.mkdir(parents=True)
            (target / f"{module}.py").write_text(shown.stdout)
            dirs[function] = target
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    command, source, _, build = layout()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "LOCKGATE_DATA_DIR": str(work / "data"),
            "LOCKGATE_WARM_LOCAL_MODEL": "false",
            "LOCKGATE_AUTH": "api-gateway",
            "LOCKGATE_IDEMPOTENCY_TABLE": "idempotency",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        if build is None:
            env["PYTHONPATH"] = ""
        previous = old_entries(work)
        rows = []
        for function, directory, module in ENTRIES:
            code = build / "functions" / directory if build else REPO / "functions" / directory
            layer = build / "layer" / "python" if build else REPO / "layers" / "common"
            extra = [str(build / "runtime")] if build else []
            now = [sample(command, [str(code), str(layer), *extra], module, function, env)]
            now += [
                sample(command, [str(code), str(layer), *extra], module, function, env)
                for _ in range(args.samples - 1)
            ]
            before = []
            if function in previous and module == "handler":
                path = [str(previous[function]), str(layer), *extra]
                before = [sample(command, path, module, function, env) for _ in range(args.samples)]
            rows.append((function, module, now, before))
    lines = [
        f"Cold start per Lambda entry module, median of {args.samples} fresh interpreters each "
        f"(Python {LOCAL}, from the {source}). Target: import <= {TARGET_MS:.0f} ms.",
        "",
        "| function | entry module | import ms | first use ms | import at `main` ms | ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for function, module, now, before in rows:
        imported = statistics.median(s["import"] or 0 for s in now) * 1000
        firsts = [s["first"] for s in now if s["first"] is not None]
        first = f"{statistics.median(firsts) * 1000:.0f}" if firsts else "-"
        old = statistics.median(s["import"] or 0 for s in before) * 1000 if before else None
        ratio = f"{imported / old:.2f}" if old else "-"
        verdict = "" if imported <= TARGET_MS else " (over target)"
        lines.append(
            f"| {function} | {module} | {imported:.0f}{verdict} | {first} "
            f"| {f'{old:.0f}' if old else '-'} | {ratio} |"
        )
    lines += [
        "",
        "`first use` is the work the entry defers: building the app, its stores and clients "
        "(the gateway's first GET /health through Mangum on the embedded backend; orchestrate's "
        "app factory, which uvicorn calls before the Web Adapter's readiness check passes). "
        "`main` for orchestrate was a shell script starting `lockgate.app:create_app`, so it "
        "has no import of its own to compare.",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("# Cold start\n\n" + table + "\n")


if __name__ == "__main__":
    main()
