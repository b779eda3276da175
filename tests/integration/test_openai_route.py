"""The official `openai` SDK against the gateway served by uvicorn, through the mock upstream."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import openai
import pytest

from tests.support.servers import RunningGateway, access_records, gateway, mock_policy


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "fast": {"targets": ["mock/gpt-fast"]},
            "smart": {"targets": ["mockant/claude-smart"]},
        },
        tiers={"simple": "fast", "complex": "smart"},
    )
    with gateway(policy, tmp_path_factory.mktemp("openai")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_non_streaming_answer_names_the_target(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="fast", messages=ask("hello there")
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-lockgate-model"] == "mock/gpt-fast"
    assert raw.headers["x-lockgate-attempts"] == "1"
    assert raw.headers["x-request-id"]


def test_streaming_matches_openai_framing(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="fast",
        messages=ask("stream please"),
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-lockgate-model"] == "mock/gpt-fast"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    stream = client.chat.completions.create(
        model="fast",
        messages=ask("stream please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert text and finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


def test_auto_routes_by_complexity(client: openai.OpenAI) -> None:
    simple = client.chat.completions.with_raw_response.create(model="auto", messages=ask("hi!"))
    assert simple.headers["x-lockgate-tier"] == "simple"
    assert simple.headers["x-lockgate-model"] == "mock/gpt-fast"
    hard = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=ask(
            "Explain step by step why this recursive function overflows and design a better "
            "one, comparing the trade-offs:\n```python\ndef f(n):\n    return f(n - 1)\n```"
        ),
    )
    assert hard.headers["x-lockgate-tier"] == "complex"
    assert hard.headers["x-lockgate-model"] == "mockant/claude-smart"
    assert hard.parse().choices[0].message.content


def test_anthropic_target_streams_through_openai_route(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="smart", messages=ask("hey"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_calls_pass_through(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = client.chat.completions.create(
        model="fast",
        messages=ask("what is the weather in Paris?"),
        tools=tools,  # type: ignore[arg-type]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"


def test_models_lists_auto_and_aliases(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["auto", "fast", "smart"]


async def test_async_client_streams(gw: RunningGateway) -> None:
    client = openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    stream = await client.chat.completions.create(model="fast", messages=ask("async"), stream=True)
    text = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(t or "" for t in text)
    await client.close()


def test_request_log_explains_the_tier(
    client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lockgate.access")
    client.chat.completions.create(
        model="auto", messages=ask("Explain why this fails: ```def f(): return f()```")
    )
    records = access_records(caplog)
    fields = [getattr(r, "fields", {}) for r in records if r.name == "lockgate.access"]
    assert any("code" in (f.get("tier_reason") or "") for f in fields)
