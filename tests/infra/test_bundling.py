"""The shared layer's build as `cdk synth` runs it: what pip is asked for, what the lock holds,
and what the bundler refuses. Offline and fast; tests/artifacts builds the real thing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundling(load_infra: Callable[[str], ModuleType]) -> ModuleType:
    return load_infra("infra.components.bundling")


def write_pyproject(path: Path, dependencies: list[str], aws: list[str]) -> Path:
    deps = ", ".join(f'"{dep}"' for dep in dependencies)
    extra = ", ".join(f'"{dep}"' for dep in aws)
    path.write_text(
        f'[project]\nname = "x"\ndependencies = [{deps}]\n'
        f'[project.optional-dependencies]\naws = [{extra}]\nlocal = ["llama-cpp-python"]\n'
    )
    return path


def test_requirements_leave_out_what_lambda_provides_or_never_imports(
    bundling: ModuleType, tmp_path: Path
) -> None:
    pyproject = write_pyproject(
        tmp_path / "pyproject.toml",
        [
            "fastapi>=0.115",
            "boto3>=1.34",
            "openai[aiohttp]>=1.60",
            "uvloop; sys_platform != 'win32'",
        ],
        ["mangum>=0.17", "fastapi>=0.115"],
    )
    assert bundling.runtime_requirements(pyproject) == [
        "fastapi>=0.115",
        "openai[aiohttp]>=1.60",
        "mangum>=0.17",
    ]


def test_laptop_only_dependencies_are_refused(bundling: ModuleType, tmp_path: Path) -> None:
    pyproject = write_pyproject(tmp_path / "pyproject.toml", ["fastapi", "torch>=2"], [])
    with pytest.raises(ValueError, match="torch"):
        bundling.runtime_requirements(pyproject)


def test_the_repos_layer_has_the_runtime_dependencies_only(bundling: ModuleType) -> None:
    names = {
        bundling.project_name(req) for req in bundling.runtime_requirements(REPO / "pyproject.toml")
    }
    assert {"fastapi", "pydantic", "mangum", "aws-lambda-powertools", "uvicorn"} <= names
    assert not names & {"boto3", "botocore", "llama-cpp-python", "torch", "pytest", "uvloop"}


def lock_pins(path: Path) -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if match := re.match(r"^([a-z0-9-]+)==(\S+)", line):
            current = match.group(1)
            pins[current] = []
        elif match := re.search(r"--hash=sha256:([0-9a-f]{64})", line):
            pins[current].append(match.group(1))
    return pins


def test_the_lock_is_resolved_from_todays_pyproject(bundling: ModuleType) -> None:
    """Changing pyproject's runtime dependencies without `make lock` fails here, offline."""
    assert bundling.artifacts.lock_is_current(), "requirements/lambda.txt is stale: make lock"


def test_every_locked_wheel_is_pinned_and_hashed(bundling: ModuleType) -> None:
    artifacts = bundling.artifacts
    pins = lock_pins(artifacts.LOCK)
    wanted = {
        bundling.project_name(req) for req in bundling.runtime_requirements(REPO / "pyproject.toml")
    }
    assert wanted <= set(pins)
    assert all(pins.values()), "a pin without a hash"
    assert not set(pins) & (artifacts.RUNTIME_PROVIDED | set(artifacts.UNUSED) | bundling.FORBIDDEN)
    models = lock_pins(artifacts.MODELS_LOCK)
    assert set(models) == set(artifacts.MODEL_PACKAGES) and all(models.values())


def test_pip_installs_the_lock_for_lambdas_platform_only(bundling: ModuleType) -> None:
    lock = bundling.artifacts.LOCK
    args = bundling.artifacts.pip_install_args("/out/python", [lock], "3.12")
    joined = " ".join(args)
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:", "--no-compile"):
        assert flag in args
    assert "--platform manylinux_2_28_x86_64" in joined
    assert "--platform manylinux2014_x86_64" in joined
    assert "--implementation cp --python-version 3.12" in joined
    assert "--target /out/python" in joined
    assert args[-2:] == ["-r", str(lock)]


def test_runtime_names_map_to_python_versions(bundling: ModuleType) -> None:
    assert bundling.python_version("python3.12") == "3.12"
    with pytest.raises(ValueError):
        bundling.python_version("nodejs22.x")


def test_the_docker_path_refuses_instead_of_building_another_layer(bundling: ModuleType) -> None:
    command = bundling.docker_command()
    assert command[:2] == ["bash", "-c"] and "exit 1" in command[2]


def fake_build(root: Path, layer_bytes: int) -> Callable[..., dict[str, Any]]:
    def build(out: Path, python: str) -> dict[str, Any]:
        site = out / "layer" / "python"
        (site / "lockgate").mkdir(parents=True, exist_ok=True)
        (site / "lockgate" / "__init__.py").write_text("")
        sizes: dict[str, Any] = {"layer": {"unzipped": layer_bytes, "zipped": 1}}
        for name in ("gateway", "orchestrate", "ingest"):
            sizes[name] = {"unzipped": 1, "zipped": 1, "other_layers": 0}
            sizes[name]["total_unzipped"] = layer_bytes + 1
        return sizes

    return build


def test_the_bundler_copies_the_built_layer(
    bundling: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundling.artifacts, "build", fake_build(tmp_path, 1000))
    requirements = bundling.runtime_requirements(REPO / "pyproject.toml")
    bundler = bundling.PipLayerBundler(
        python="3.12", requirements=requirements, out=tmp_path / "build"
    )
    assert bundler.try_bundle(str(tmp_path / "asset"), None) is True
    assert (tmp_path / "asset" / "python" / "lockgate" / "__init__.py").is_file()


def test_the_bundler_refuses_an_oversized_layer_or_a_stale_lock(
    bundling: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundling.artifacts, "build", fake_build(tmp_path, 300 * 2**20))
    requirements = bundling.runtime_requirements(REPO / "pyproject.toml")
    bundler = bundling.PipLayerBundler(python="3.12", requirements=requirements, out=tmp_path)
    with pytest.raises(RuntimeError, match="over Lambda's 262,144,000"):
        bundler.try_bundle(str(tmp_path / "asset"), None)
    stale = bundling.PipLayerBundler(python="3.12", requirements=["flask"], out=tmp_path)
    with pytest.raises(RuntimeError, match="make lock"):
        stale.try_bundle(str(tmp_path / "asset2"), None)
