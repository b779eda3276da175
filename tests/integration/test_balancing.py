"""Load balancing through the gateway (uvicorn) to the mock upstream (aiohttp), with the
official `openai` SDK as the caller: where requests land is read from the mock's own request
counts (`GET /_mock/stats`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "spread": {
                "strategy": "weighted",
                "targets": [
                    {"provider": "mock", "model": "lb-heavy", "weight": 3},
                    {"provider": "mock", "model": "lb-light", "weight": 1},
                ],
            },
            "flaky": {
                "strategy": "weighted",
                "targets": [
                    {"provider": "mock", "model": "lb-broken+status=500", "weight": 50},
                    {"provider": "mock", "model": "lb-steady", "weight": 1},
                ],
            },
            "fastest": {
                "strategy": "least_latency",
                "targets": ["mock/lb-slow+latency_ms=120", "mock/lb-quick"],
            },
        },
        retry={"attempts": 1},
        cooldown={"failures": 1, "seconds": 600},
    )
    with gateway(policy, tmp_path_factory.mktemp("balance")) as running:
        yield running


def counts(upstream: str) -> dict[str, int]:
    requests: dict[str, int] = httpx.get(f"{upstream}/_mock/stats").json()["requests"]
    return requests


def ask(client: openai.OpenAI, model: str, n: int, *, stream: bool = False) -> list[str]:
    served = []
    for i in range(n):
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": f"hi {i}"}], stream=stream
        )
        served.append(raw.headers["x-lockgate-model"])
        if stream:
            list(raw.parse())
    return served


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)


def test_weighted_targets_share_the_traffic(client: openai.OpenAI, upstream: str) -> None:
    before = counts(upstream)
    ask(client, "spread", 200)
    after = counts(upstream)
    heavy = after.get("lb-heavy", 0) - before.get("lb-heavy", 0)
    light = after.get("lb-light", 0) - before.get("lb-light", 0)
    assert (heavy, light) == (150, 50)  # 3:1 by weight, in turns


def test_a_cooled_down_target_is_skipped(client: openai.OpenAI, upstream: str) -> None:
    served = ask(client, "flaky", 20)
    assert set(served) == {"mock/lb-steady"}  # each answer came from the working target
    # The heavy target failed once, cooled down, and was never tried again.
    assert counts(upstream)["lb-broken+status=500"] == 1


def test_least_latency_moves_to_the_quick_target(client: openai.OpenAI) -> None:
    served = ask(client, "fastest", 12, stream=True)
    # Both get measured once, then the quick one takes (nearly) everything.
    assert "mock/lb-slow+latency_ms=120" in served[:2]
    assert served[2:].count("mock/lb-quick") >= 9


def policy_weights(gw: RunningGateway) -> dict[str, Any]:
    return {t.key: t.weight for t in gw.app.state.container.policy.models["spread"].targets}


def test_weights_come_from_the_policy_file(gw: RunningGateway) -> None:
    assert policy_weights(gw) == {"mock/lb-heavy": 3.0, "mock/lb-light": 1.0}
