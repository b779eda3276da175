"""CDK context to typed settings: `-c key=value` arrives as strings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def read(load_infra: Callable[[str], ModuleType]) -> Callable[..., Any]:
    settings = load_infra("infra.settings")
    cdk = load_infra("aws_cdk")

    def from_context(**context: Any) -> Any:
        return settings.Settings.from_node(cdk.App(context=context).node)

    return from_context


def test_defaults_make_a_dev_deployment(read: Callable[..., Any]) -> None:
    settings = read()
    assert settings.stage_name == "prod"
    assert settings.lwa_layer_version >= 30
    assert settings.skip_bundling is False
    assert settings.lockgate_config is None and settings.policy_file is None
    assert settings.bedrock_model_ids == ()


def test_command_line_strings_are_parsed(read: Callable[..., Any]) -> None:
    settings = read(
        skipBundling="true",
        lwaLayerVersion="31",
        throttleRateLimit="2.5",
        quotaPeriod="week",
        bedrockModelIds="a.b, c.d",
        logLevel="debug",
    )
    assert settings.skip_bundling is True
    assert settings.lwa_layer_version == 31
    assert settings.throttle_rate_limit == 2.5
    assert settings.quota_period == "WEEK"
    assert settings.bedrock_model_ids == ("a.b", "c.d")
    assert settings.log_level == "DEBUG"
    assert read(skipBundling="false").skip_bundling is False


def test_bad_values_fail_at_synth(read: Callable[..., Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quotaPeriod"):
        read(quotaPeriod="YEAR")
    with pytest.raises(ValueError, match="policyFile"):
        read(policyFile=str(tmp_path / "missing.yaml"))
