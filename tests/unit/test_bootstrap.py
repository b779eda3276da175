"""The composition root loads MiniLM at start only when requests will need it (real build on
SQLite in a temp dir; the model is not run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lockgate.bootstrap import build
from lockgate.settings import Settings

RELAY = {
    "providers": {"up": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}},
    "models": {"m": {"targets": ["up/x"]}},
}


def container(tmp_path: Path, **policy: Any) -> Any:
    config = tmp_path / "policy.yaml"
    config.write_text(yaml.safe_dump({**RELAY, **policy}), encoding="utf-8")
    return build(Settings(config=config, data_dir=tmp_path))


@pytest.mark.parametrize(
    ("policy", "warmed"),
    [
        ({"cache": {"enabled": False}, "safety": {"injection_action": "off"}}, False),
        ({"cache": {"semantic": False}, "safety": {"injection_action": "off"}}, False),
        ({"cache": {"enabled": False}}, False),  # the injection guard needs no embedding
        ({"safety": {"injection_action": "off"}}, True),  # the semantic cache is on by default
        (
            {
                "cache": {"enabled": False},
                "safety": {"injection_action": "off"},
                "models": {"m": {"targets": ["up/x"], "rag": {"collection": "kb"}}},
            },
            True,
        ),
    ],
)
async def test_minilm_is_loaded_at_start_only_when_requests_embed(
    tmp_path: Path, policy: dict[str, Any], warmed: bool
) -> None:
    built = container(tmp_path, **policy)
    try:
        assert bool(built.loaders) is warmed
    finally:
        await built.aclose()
