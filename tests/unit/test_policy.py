from __future__ import annotations

from pathlib import Path

import pytest
from lockgate.policy import PolicyError, default_policy, load_policy, parse_policy

VALID = {
    "providers": {"oa": {"kind": "openai", "api_key_env": "OA_KEY"}, "here": {"kind": "local"}},
    "models": {
        "fast": {"targets": ["oa/gpt-4o-mini", {"provider": "here", "model": "smol"}]},
        "smart": {"targets": ["oa/gpt-4o"], "retry": {"attempts": 3}},
    },
    "tiers": {"simple": "fast", "complex": "smart"},
}


def test_targets_accept_both_spellings() -> None:
    policy = parse_policy(VALID)
    assert [t.key for t in policy.models["fast"].targets] == ["oa/gpt-4o-mini", "here/smol"]
    assert policy.retry_for("smart").attempts == 3
    assert policy.retry_for("fast").attempts == policy.retry.attempts


def test_unnamed_tier_borrows_the_nearest() -> None:
    policy = parse_policy(VALID)
    assert policy.tier_alias("medium") in ("fast", "smart")
    assert policy.tier_alias("complex") == "smart"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"models": {"fast": {"targets": ["nobody/x"]}}}, "models.fast.targets.0.provider"),
        ({"providers": {"oa": {"kind": "openaii"}}}, "providers.oa"),
        ({"tiers": {"simple": "missing"}}, "tiers.simple"),
        ({"retry": {"attempts": 0}}, "retry.attempts"),
        ({"models": {"fast": {"targets": ["no-slash"]}}}, "models.fast.targets"),
        ({"timeouts": {"first_token": 3}}, "timeouts.first_token"),
        ({"models": {"auto": {"targets": ["oa/x"]}}}, "models.auto"),
    ],
)
def test_bad_config_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({**VALID, **change}, "my.yaml")
    assert "my.yaml" in str(caught.value)
    assert field in str(caught.value)


def test_load_reports_yaml_and_io_problems(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(broken)


def test_env_references_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_URL", "http://127.0.0.1:1234/v1")
    file = tmp_path / "p.yaml"
    file.write_text(
        "providers:\n  m: {kind: openai, base_url: '${UPSTREAM_URL}'}\n"
        "models:\n  a: {targets: [m/x]}\n"
    )
    provider = load_policy(file).providers["m"]
    assert provider.base_url == "http://127.0.0.1:1234/v1"


def test_default_policy_is_the_local_model() -> None:
    policy = default_policy()
    assert policy.providers["local"].kind == "local"
    assert policy.tier_alias("complex") == "local"
