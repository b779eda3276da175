"""The official `anthropic` SDK against the gateway's `/v1/messages`, on the same routing."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "fast": {"targets": ["mock/gpt-fast"]},
            "claude": {"targets": ["mockant/claude-x"]},
            "resilient": {"targets": ["mock/bad+status=503", "mockant/claude-y"]},
        },
        tiers={"simple": "fast", "complex": "claude"},
        retry={"attempts": 1},
    )
    with gateway(policy, tmp_path_factory.mktemp("anthropic")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


HELLO = [{"role": "user", "content": "hello there"}]


@pytest.mark.parametrize(
    ("model", "target"), [("fast", "mock/gpt-fast"), ("claude", "mockant/claude-x")]
)
def test_messages_non_streaming(client: anthropic.Anthropic, model: str, target: str) -> None:
    raw = client.messages.with_raw_response.create(
        model=model,
        max_tokens=64,
        system="Be brief.",
        messages=HELLO,  # type: ignore[arg-type]
    )
    message = raw.parse()
    assert raw.headers["x-lockgate-model"] == target
    assert message.role == "assistant" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["fast", "claude", "resilient", "auto"])
def test_messages_streaming(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(model=model, max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_max_tokens_maps_to_stop_reason(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="fast", max_tokens=3, messages=HELLO)  # type: ignore[arg-type]
    assert message.stop_reason == "max_tokens"


def test_tool_use_round_trips(client: anthropic.Anthropic) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    message = client.messages.create(
        model="fast",
        max_tokens=64,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "what is the weather in Oslo?"}],
    )
    assert message.stop_reason == "tool_use"
    block = next(b for b in message.content if b.type == "tool_use")
    assert block.name == "get_weather" and isinstance(block.input, dict)
