"""The fault matrix (issue 9): every upstream fault the mock can inject, streamed or buffered, on
the OpenAI or the Anthropic route. With a healthy target behind the faulty one the client gets
the healthy answer; with the faulty one alone it gets the right status in its protocol's
envelope, with `Retry-After` on every 503.

Real: the gateway on loopback, the mock upstream speaking each route's own wire format (OpenAI
upstream behind the OpenAI route, Anthropic upstream behind `/v1/messages`), the SDKs as
callers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy

FAULTS: dict[str, tuple[str, int]] = {
    "429_retry_after": ("bad+status=429+retry_after=1", 503),
    "429": ("bad+status=429", 503),
    "402": ("bad+status=402", 502),
    "500": ("bad+status=500", 502),
    "503": ("bad+status=503", 503),
    "refused": ("REFUSED", 502),
    "timeout": ("bad+timeout", 504),
    "stall": ("bad+stall_after=0", 504),
    "cut": ("bad+cut_after=0", 502),
    "malformed": ("bad+malformed_after=0", 502),
    "wrong_type": ("bad+wrong_type", 502),
}
"""fault → (model directive, status when no other target can answer)."""
ROUTES = {"openai": "mock", "anthropic": "mockant"}
MESSAGES: Any = [{"role": "user", "content": "say something"}]


def _target(route: str, fault: str) -> str:
    directive = FAULTS[fault][0]
    if directive == "REFUSED":
        return f"dead_{route}/x"
    return f"{ROUTES[route]}/{directive}"


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    models: dict[str, Any] = {}
    for route, provider in ROUTES.items():
        for fault in FAULTS:
            models[f"{route}_{fault}_fallback"] = {
                "targets": [_target(route, fault), f"{provider}/good"]
            }
            models[f"{route}_{fault}_alone"] = {"targets": [_target(route, fault)]}
    timeouts = {"connect_s": 1, "first_token_s": 0.5, "response_s": 0.5, "total_s": 10}
    policy = mock_policy(
        upstream,
        models,
        timeouts=timeouts,
        retry={"attempts": 1},
        cooldown={"failures": 1000, "seconds": 1},
    )
    policy["providers"]["dead_openai"] = {
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "x",
    }
    policy["providers"]["dead_anthropic"] = {
        "kind": "anthropic",
        "base_url": "http://127.0.0.1:9",
        "api_key": "x",
    }
    with gateway(policy, tmp_path_factory.mktemp("matrix")) as running:
        yield running


def _openai(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0, timeout=20)


def _anthropic(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=20)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_openai_route_falls_back(gw: RunningGateway, fault: str, stream: bool) -> None:
    raw = _openai(gw).chat.completions.with_raw_response.create(
        model=f"openai_{fault}_fallback", messages=MESSAGES, stream=stream
    )
    assert raw.headers["x-lockgate-model"] == "mock/good"
    if stream:
        chunks = list(raw.parse())
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        assert raw.parse().choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_route_falls_back(gw: RunningGateway, fault: str, stream: bool) -> None:
    client = _anthropic(gw)
    model = f"anthropic_{fault}_fallback"
    if stream:
        with client.messages.stream(model=model, max_tokens=32, messages=MESSAGES) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(model=model, max_tokens=32, messages=MESSAGES)
    assert message.stop_reason == "end_turn" and message.content


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_openai_route_alone_gets_the_right_error(
    gw: RunningGateway, fault: str, stream: bool
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        response = _openai(gw).chat.completions.create(
            model=f"openai_{fault}_alone", messages=MESSAGES, stream=stream
        )
        if stream:
            list(response)  # type: ignore[arg-type]
    error = caught.value
    assert error.status_code == FAULTS[fault][1]
    body: Any = error.body
    assert set(body) == {"message", "type", "param", "code"}
    assert error.response.headers["x-request-id"]
    if error.status_code == 503:
        assert int(error.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_route_alone_gets_the_right_error(
    gw: RunningGateway, fault: str, stream: bool
) -> None:
    client = _anthropic(gw)
    model = f"anthropic_{fault}_alone"
    with pytest.raises(anthropic.APIStatusError) as caught:
        if stream:
            with client.messages.stream(model=model, max_tokens=32, messages=MESSAGES) as events:
                events.get_final_message()
        else:
            client.messages.create(model=model, max_tokens=32, messages=MESSAGES)
    error = caught.value
    assert error.status_code == FAULTS[fault][1]
    body: Any = error.body
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    if error.status_code == 503:
        assert int(error.response.headers["retry-after"]) >= 1
