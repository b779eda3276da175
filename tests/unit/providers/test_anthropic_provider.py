"""The Anthropic adapter, with the real SDK talking to a small Messages API server on 127.0.0.1.

The server speaks the wire format byte for byte as Anthropic does (the real stream event order,
pings included, error envelopes and headers), so the SDK's parsing and error classes are the
real ones. The requested model name picks the server's behaviour.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from lockgate.chat import ChatChunk, ChatMessage, ChatRequest
from lockgate.policy import AnthropicProviderConfig, Timeouts
from lockgate.providers.anthropic import AnthropicProvider
from lockgate.providers.anthropic.translate import request_arguments
from lockgate.providers.errors import ErrorKind, ProviderError

from tests.support.servers import serve
from tests.unit.providers.helpers import TOOLS, until_client_leaves

API_KEY = "sk-ant-test-secret-key"

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 3},
}

STREAM_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                **MESSAGE,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 15},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def sse(event: str, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def error_response(status: int, error_type: str, message: str, **headers: str) -> web.Response:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.json_response(body, status=status, headers=headers)


class Upstream:
    """Records what it was sent; `model` picks the behaviour."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.disconnected = asyncio.Event()

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        model = body["model"]
        if model == "rate-limited":
            return error_response(429, "rate_limit_error", "slow down", **{"retry-after": "7"})
        if model == "broken":
            return error_response(500, "api_error", "internal")
        if model == "unauthorized":
            return error_response(401, "authentication_error", f"invalid x-api-key {API_KEY}")
        if model == "invalid":
            return error_response(400, "invalid_request_error", "max_tokens: too large")
        if model == "slow":
            await asyncio.sleep(0.5)
        if not body.get("stream"):
            return web.json_response(MESSAGE)
        return await self._stream(request, model)

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        events = [sse(name, data) for name, data in STREAM_EVENTS]
        if model in ("cut", "dropped", "hang"):
            events = events[:4]
        elif model == "overloaded":
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
            events = [*events[:4], sse("error", error)]
        elif model == "garbage":
            events = [*events[:4], sse("content_block_delta", "{not json")]
        for frame in events:
            await response.write(frame)
        if model == "dropped":
            assert request.transport is not None
            request.transport.close()
            return response
        if model == "hang":
            await until_client_leaves(request, self.disconnected)
            return response
        await response.write_eof()
        return response


@asynccontextmanager
async def upstream() -> AsyncIterator[tuple[str, Upstream]]:
    state = Upstream()
    app = web.Application()
    app.router.add_post("/v1/messages", state.messages)
    async with serve(app) as url:
        yield url, state


@asynccontextmanager
async def provider(base_url: str, **timeouts: float) -> AsyncIterator[AnthropicProvider]:
    config = AnthropicProviderConfig(kind="anthropic", base_url=base_url, api_key=API_KEY)
    adapter = AnthropicProvider("anthropic", config, Timeouts(**timeouts))
    try:
        yield adapter
    finally:
        await adapter.aclose()


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "Weather in Paris?"}])
    return ChatRequest(model="alias", **fields)


async def collect(adapter: AnthropicProvider, model: str) -> list[ChatChunk]:
    return [chunk async for chunk in adapter.stream(chat(), model)]


async def failure(adapter: AnthropicProvider, model: str, *, stream: bool) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        if stream:
            await collect(adapter, model)
        else:
            await adapter.complete(chat(), model)
    return caught.value


async def test_complete_translates_request_and_response() -> None:
    request = chat(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "user", "content": "And be quick."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "Thanks"},
        ],
        tools=TOOLS,
        tool_choice="required",
        stop=["END"],
        temperature=1.5,
        top_p=0.9,
        max_tokens=64,
        parallel_tool_calls=False,
    )
    async with upstream() as (url, state), provider(url) as adapter:
        result = await adapter.complete(request, "claude-test")
    sent = state.requests[0]
    assert API_KEY in state.headers[0]["authorization"]
    assert sent["model"] == "claude-test"
    assert sent["max_tokens"] == 64
    assert sent["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use tools."},
    ]
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "text", "text": "And be quick."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 1.0
    assert sent["top_p"] == 0.9
    assert "stream" not in sent or sent["stream"] is False

    assert result.text == "Let me check."
    assert result.finish_reason == "tool_calls"
    assert result.usage.prompt_tokens == 15
    assert result.usage.completion_tokens == 7
    assert result.tool_calls == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]


async def test_default_max_tokens_comes_from_config() -> None:
    config = AnthropicProviderConfig(kind="anthropic", api_key="k", default_max_tokens=333)
    assert request_arguments(chat(), "m", config.default_max_tokens)["max_tokens"] == 333
    assert request_arguments(chat(max_completion_tokens=9), "m", 333)["max_tokens"] == 9


async def test_stream_yields_text_tool_deltas_and_final_chunk() -> None:
    async with upstream() as (url, state), provider(url) as adapter:
        chunks = await collect(adapter, "claude-test")
    assert state.requests[0]["stream"] is True
    assert "".join(c.text for c in chunks) == "Hello"
    calls = [call for c in chunks for call in c.tool_calls or []]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert all(c["index"] == 0 for c in calls)
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (12, 15)
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)


async def test_stream_that_ends_before_message_stop_has_no_finish_chunk() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        chunks = await collect(adapter, "cut")
    assert "".join(c.text for c in chunks) == "Hel"
    assert all(c.finish_reason is None for c in chunks)


async def test_dropped_connection_mid_stream_is_retryable() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        received: list[ChatChunk] = []
        with pytest.raises(ProviderError) as caught:
            async for chunk in adapter.stream(chat(), "dropped"):
                received.append(chunk)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert "".join(c.text for c in received) == "Hel"


async def test_leaving_a_stream_early_closes_the_upstream_connection() -> None:
    async with upstream() as (url, state), provider(url) as adapter:
        stream = adapter.stream(chat(), "hang")
        first = await anext(stream)  # type: ignore[call-overload]
        assert first.text == "Hel"
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(state.disconnected.wait(), 2)


async def test_rate_limit_maps_to_retryable_with_retry_after() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        for stream in (False, True):
            error = await failure(adapter, "rate-limited", stream=stream)
            assert error.kind is ErrorKind.RETRYABLE
            assert error.status == 429
            assert error.retry_after == 7.0


async def test_server_error_is_retryable_and_bad_request_is_not() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        broken = await failure(adapter, "broken", stream=False)
        invalid = await failure(adapter, "invalid", stream=True)
    assert (broken.kind, broken.status) == (ErrorKind.RETRYABLE, 500)
    assert (invalid.kind, invalid.status) == (ErrorKind.REQUEST, 400)
    assert "max_tokens: too large" in invalid.message


async def test_auth_failure_is_target_kind_and_never_leaks_the_key() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        error = await failure(adapter, "unauthorized", stream=False)
    assert error.kind is ErrorKind.TARGET
    assert API_KEY not in error.message
    assert API_KEY not in str(error)


async def test_error_event_inside_stream_maps_by_error_type() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        error = await failure(adapter, "overloaded", stream=True)
    assert (error.kind, error.status) == (ErrorKind.RETRYABLE, 529)


async def test_undecodable_event_is_malformed() -> None:
    async with upstream() as (url, _), provider(url) as adapter:
        error = await failure(adapter, "garbage", stream=True)
    assert error.kind is ErrorKind.RETRYABLE
    assert error.code == "malformed_upstream"


async def test_read_timeout_and_refused_connection_are_retryable() -> None:
    async with upstream() as (url, _), provider(url, total_s=0.1) as adapter:
        slow = await failure(adapter, "slow", stream=False)
        stalled = await failure(adapter, "hang", stream=True)
    assert (slow.kind, slow.code) == (ErrorKind.RETRYABLE, "timeout_read")
    assert (stalled.kind, stalled.code) == (ErrorKind.RETRYABLE, "timeout_read")
    async with provider(url, connect_s=0.5) as adapter:
        refused = await failure(adapter, "claude-test", stream=True)
    assert (refused.kind, refused.code) == (ErrorKind.RETRYABLE, "connection_error")


def test_unsupported_features_fall_back_and_bad_arguments_are_refused() -> None:
    audio = ChatMessage(role="user", content=[{"type": "input_audio", "input_audio": {}}])
    with pytest.raises(ProviderError) as unsupported:
        request_arguments(chat(messages=[audio]), "m", 10)
    assert unsupported.value.kind is ErrorKind.TARGET
    with pytest.raises(ProviderError) as multiple:
        request_arguments(chat(n=2), "m", 10)
    assert multiple.value.kind is ErrorKind.TARGET
    bad_call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    assistant = ChatMessage(role="assistant", tool_calls=[bad_call])
    with pytest.raises(ProviderError) as bad:
        request_arguments(chat(messages=[assistant]), "m", 10)
    assert bad.value.kind is ErrorKind.REQUEST


def test_images_tool_choice_and_empty_turns() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    request = chat(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image, remote]},
            {"role": "assistant", "content": ""},
        ],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        user="u-1",
        top_k=5,
    )
    arguments = request_arguments(request, "m", 10)
    assert arguments["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    assert arguments["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert arguments["metadata"] == {"user_id": "u-1"}
    assert arguments["extra_body"] == {"top_k": 5}
