"""Mid-stream continuation (issue 9): with `stream_continuation: true`, a provider that fails
after the first token reached the client — an in-stream error event, a stall, a cut — is carried
on by the next target. The client sees one uninterrupted answer, the seam de-duplicated, and
the final chunk says where it switched. Never inside a tool call.

Real: the gateway on loopback, the mock upstream's faults over both upstream wire formats, the
`openai` and `anthropic` SDKs as callers on both routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.support.servers import RunningGateway, gateway, mock_policy

FAULTS = {"cut": "cut_after=3", "stall": "stall_after=3", "error": "error_after=3"}
UPSTREAMS = {"openai": "mock", "anthropic": "mockant"}
MESSAGES: Any = [{"role": "user", "content": "tell me about the northern lights please"}]


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    models: dict[str, Any] = {"healthy": {"targets": ["mock/good"]}}
    for fault, directive in FAULTS.items():
        for wire, provider in UPSTREAMS.items():
            models[f"{fault}_{wire}"] = {
                "targets": [f"{provider}/bad+{directive}", "mock/good"],
                "stream_continuation": True,
            }
    models["tool_cut"] = {
        "targets": ["mock/bad+cut_after=2", "mock/good"],
        "stream_continuation": True,
    }
    timeouts = {"first_token_s": 2, "between_chunks_s": 0.5, "total_s": 20}
    policy = mock_policy(upstream, models, timeouts=timeouts, retry={"attempts": 1})
    with gateway(policy, tmp_path_factory.mktemp("continuation")) as running:
        yield running


def _expected(gw: RunningGateway) -> str:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    completion = client.chat.completions.create(model="healthy", messages=MESSAGES)
    return completion.choices[0].message.content or ""


@pytest.mark.parametrize("wire", list(UPSTREAMS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_openai_route_continues_on_the_next_target(
    gw: RunningGateway, fault: str, wire: str
) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0, timeout=20)
    stream = client.chat.completions.create(model=f"{fault}_{wire}", messages=MESSAGES, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1 and final[0].choices[0].finish_reason == "stop"
    assert text == _expected(gw)
    continued = (final[0].model_extra or {})["lockgate"]["continued"]
    assert continued["from"].startswith(f"{UPSTREAMS[wire]}/bad+")
    assert continued["to"] == "mock/good" and continued["attempts"] == 2


@pytest.mark.parametrize("wire", list(UPSTREAMS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_route_continues_on_the_next_target(
    gw: RunningGateway, fault: str, wire: str
) -> None:
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    with client.messages.stream(
        model=f"{fault}_{wire}", max_tokens=64, messages=MESSAGES
    ) as stream:
        events = list(stream)
        message = stream.get_final_message()
    assert message.stop_reason == "end_turn"
    text = "".join(b.text for b in message.content if b.type == "text")
    assert text == _expected(gw)
    (delta,) = [e for e in events if e.type == "message_delta"]
    continued = (delta.model_extra or {})["lockgate"]["continued"]
    assert continued["to"] == "mock/good"


def test_never_inside_a_tool_call(gw: RunningGateway) -> None:
    """A tool call cut half way is not stitched from two models: the clean error stays."""
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0, timeout=20)
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    stream = client.chat.completions.create(
        model="tool_cut",
        messages=[{"role": "user", "content": "what is the weather in Oslo"}],
        tools=tools,
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received and any(c.choices and c.choices[0].delta.tool_calls for c in received)
