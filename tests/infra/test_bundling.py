"""The shared layer's local build: what pip is asked for, and what the layer may not contain."""

from __future__ import annotations

import subprocess
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


def test_requirements_come_from_pyproject_without_what_lambda_provides(
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
        "uvloop; sys_platform != 'win32'",
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
    assert not names & {"boto3", "botocore", "llama-cpp-python", "torch", "pytest", "moto"}


def test_pip_fetches_lambda_wheels_only(bundling: ModuleType) -> None:
    args = bundling.pip_install_args("/out/python", ["fastapi"])
    joined = " ".join(args)
    assert "--platform manylinux2014_x86_64" in joined
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in args
    assert "--target /out/python" in joined
    assert args[-1] == "fastapi"


def test_docker_fallback_runs_the_same_install(bundling: ModuleType) -> None:
    command = bundling.docker_command("lockgate", ["fastapi>=0.115"])
    assert command[:2] == ["bash", "-c"]
    assert "--target /asset-output/python" in command[2]
    assert "'fastapi>=0.115'" in command[2]
    assert "cp -r /asset-input/lockgate /asset-output/python/" in command[2]


def fake_package(root: Path) -> Path:
    package = root / "src" / "lockgate"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"x")
    return package


def test_local_bundler_lays_out_python_dir(
    bundling: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], check: bool = False) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        site = Path(command[command.index("--target") + 1])
        (site / "fastapi").mkdir()
        (site / "fastapi-0.1.dist-info").mkdir()
        (site / "bin").mkdir()
        (site / "bin" / "fastapi").write_text("#!/somewhere/python")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    bundler = bundling.PipLayerBundler(package_dir=fake_package(tmp_path), requirements=["fastapi"])
    out = tmp_path / "out"
    assert bundler.try_bundle(str(out), None) is True
    assert calls and calls[0][1:4] == ["-m", "pip", "install"]
    site = out / "python"
    assert (site / "lockgate" / "__init__.py").is_file()
    assert not (site / "lockgate" / "__pycache__").exists()
    assert not (site / "bin").exists()


def test_local_bundler_reports_pip_failures(
    bundling: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_pip(command: list[str], check: bool = False) -> Any:
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(bundling.subprocess, "run", failing_pip)
    bundler = bundling.PipLayerBundler(package_dir=fake_package(tmp_path), requirements=["x"])
    with pytest.raises(RuntimeError, match="pip could not assemble the layer"):
        bundler.try_bundle(str(tmp_path / "out"), None)


def test_layer_check_refuses_forbidden_and_oversized_contents(
    bundling: ModuleType, tmp_path: Path
) -> None:
    site = tmp_path / "python"
    (site / "torch-2.5.0.dist-info").mkdir(parents=True)
    bundler = bundling.PipLayerBundler(package_dir=tmp_path, requirements=[], budget_bytes=10)
    with pytest.raises(RuntimeError, match="torch"):
        bundler.check(site)
    (site / "torch-2.5.0.dist-info").rmdir()
    (site / "big.so").write_bytes(b"x" * 11)
    with pytest.raises(RuntimeError, match="over the"):
        bundler.check(site)
