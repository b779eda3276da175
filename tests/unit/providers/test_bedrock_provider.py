"""The Bedrock adapter, on a real boto3 `bedrock-runtime` client.

Bedrock itself is emulated: moto does not implement the Converse API. `converse` and its error
responses go through `botocore.stub.Stubber` on the real client (which also checks the exact
parameters sent). Stubber cannot produce an event stream, so `converse_stream` goes over HTTP
to a small server on 127.0.0.1 that writes AWS event-stream frames (prelude, headers, CRCs) as
Bedrock does; botocore parses them as it would Bedrock's. That server runs on the test's event
loop, so every streaming test also proves the adapter never blocks the loop.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.stub import Stubber
from lockgate.chat import ChatChunk, ChatRequest
from lockgate.policy import BedrockProviderConfig, Timeouts
from lockgate.providers.bedrock import BedrockProvider
from lockgate.providers.bedrock.stream import StreamTranslator, iterate_in_thread
from lockgate.providers.bedrock.translate import converse_arguments
from lockgate.providers.errors import ErrorKind, ProviderError

from tests.support.servers import serve
from tests.unit.providers.helpers import TOOLS, until_client_leaves

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "user", "content": "Quickly."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "And this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
        ],
    },
]


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and isolation from any real AWS configuration on the machine."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatRequest(model="alias", **fields)


def stubbed() -> tuple[BedrockProvider, Stubber]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    provider = BedrockProvider(
        "bedrock", BedrockProviderConfig(kind="bedrock"), Timeouts(), client=client
    )
    return provider, Stubber(client)


async def test_converse_translates_request_and_response() -> None:
    request = chat(
        messages=CONVERSATION,
        tools=TOOLS,
        tool_choice="required",
        max_tokens=64,
        temperature=1.4,
        top_p=0.9,
        stop="END",
    )
    expected = {
        "modelId": "anthropic.claude-test",
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Paris?"}, {"text": "Quickly."}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "call_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                    {"text": "And this?"},
                    {"image": {"format": "png", "source": {"bytes": b"hello"}}},
                ],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 64,
            "temperature": 1.0,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Current weather",
                        "inputSchema": {"json": TOOLS[0]["function"]["parameters"]},
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
    }
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {
                        "toolUse": {
                            "toolUseId": "tu_1",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        }
                    },
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {
            "inputTokens": 20,
            "outputTokens": 6,
            "totalTokens": 26,
            "cacheReadInputTokens": 4,
        },
        "metrics": {"latencyMs": 12},
    }
    provider, stubber = stubbed()
    stubber.add_response("converse", response, expected)
    with stubber:
        result = await provider.complete(request, "anthropic.claude-test")
    stubber.assert_no_pending_responses()
    assert result.text == "Checking."
    assert result.finish_reason == "tool_calls"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (24, 6)
    assert result.tool_calls == [
        {
            "id": "tu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    await provider.aclose()


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 429, ErrorKind.RETRYABLE),
        ("ServiceUnavailableException", 503, ErrorKind.RETRYABLE),
        ("ModelNotReadyException", 429, ErrorKind.RETRYABLE),
        ("InternalServerException", 500, ErrorKind.RETRYABLE),
        ("ValidationException", 400, ErrorKind.REQUEST),
        ("AccessDeniedException", 403, ErrorKind.TARGET),
        ("ResourceNotFoundException", 404, ErrorKind.TARGET),
    ],
)
async def test_client_errors_map_onto_the_taxonomy(code: str, status: int, kind: ErrorKind) -> None:
    provider, stubber = stubbed()
    stubber.add_client_error(
        "converse", service_error_code=code, service_message="nope", http_status_code=status
    )
    with stubber, pytest.raises(ProviderError) as caught:
        await provider.complete(chat(), "m")
    assert caught.value.kind is kind
    assert caught.value.status == status
    assert code in caught.value.message


def test_translation_edge_cases() -> None:
    none_choice = converse_arguments(chat(tools=TOOLS, tool_choice="none"), "m")
    assert "toolChoice" not in none_choice["toolConfig"]
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert converse_arguments(chat(tools=TOOLS, tool_choice=named), "m")["toolConfig"][
        "toolChoice"
    ] == {"tool": {"name": "get_weather"}}
    assert "inferenceConfig" not in converse_arguments(chat(), "m")
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(ProviderError) as caught:
        converse_arguments(chat(messages=[{"role": "user", "content": [remote]}]), "m")
    assert caught.value.kind is ErrorKind.TARGET
    empty_result = {"role": "tool", "tool_call_id": "c", "content": ""}
    turn = converse_arguments(chat(messages=[empty_result]), "m")["messages"][0]
    assert turn["content"] == [{"toolResult": {"toolUseId": "c", "content": [{"json": {}}]}}]


# --- converse_stream over a real HTTP event stream -------------------------------------------


def frame(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude, CRC, string headers, JSON payload, CRC."""
    encoded = b"".join(
        bytes([len(name)])
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value))
        + value.encode()
        for name, value in headers.items()
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(encoded) + len(body) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + body
    return message + struct.pack(">I", binascii.crc32(message))


def event(name: str, payload: dict[str, Any]) -> bytes:
    headers = {":message-type": "event", ":event-type": name, ":content-type": "application/json"}
    return frame(headers, payload)


def exception(name: str, message: str) -> bytes:
    headers = {
        ":message-type": "exception",
        ":exception-type": name,
        ":content-type": "application/json",
    }
    return frame(headers, {"message": message})


STREAM = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event(
        "contentBlockStart",
        {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "f"}}},
    ),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a"'}}}),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ": 1}"}}}),
    event("contentBlockStop", {"contentBlockIndex": 1}),
    event("messageStop", {"stopReason": "tool_use"}),
    event(
        "metadata",
        {
            "usage": {"inputTokens": 9, "outputTokens": 5, "totalTokens": 14},
            "metrics": {"latencyMs": 3},
        },
    ),
]


class StreamServer:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.disconnected = asyncio.Event()

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        model = request.match_info["model"]
        if model == "throttled":
            return web.json_response(
                {"message": "Too many requests"},
                status=429,
                headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
            )
        if model == "slow":
            await asyncio.sleep(0.6)
        response = web.StreamResponse(
            headers={"content-type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        for chunk in self._frames(model):
            await response.write(chunk)
        if model == "hang":
            await until_client_leaves(request, self.disconnected)
            return response
        if model == "dropped":
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    @staticmethod
    def _frames(model: str) -> list[bytes]:
        if model in ("cut", "hang", "dropped"):
            return STREAM[:3]
        if model == "throttled-mid-stream":
            return [*STREAM[:2], exception("throttlingException", "slow down")]
        if model == "invalid-mid-stream":
            return [*STREAM[:2], exception("validationException", "bad input")]
        return STREAM


@asynccontextmanager
async def bedrock_server() -> AsyncIterator[tuple[str, StreamServer]]:
    state = StreamServer()
    app = web.Application()
    app.router.add_post("/model/{model}/converse-stream", state.converse_stream)
    async with serve(app) as url:
        yield url, state


@asynccontextmanager
async def lazy_provider(endpoint: str, **timeouts: float) -> AsyncIterator[BedrockProvider]:
    """A provider that makes its own client, as in production, pointed at the local server."""
    config = BedrockProviderConfig(kind="bedrock", region="us-east-1", endpoint_url=endpoint)
    provider = BedrockProvider("bedrock", config, Timeouts(**timeouts))
    try:
        yield provider
    finally:
        await provider.aclose()


async def collect(provider: BedrockProvider, model: str) -> list[ChatChunk]:
    return [chunk async for chunk in provider.stream(chat(), model)]


async def stream_failure(provider: BedrockProvider, model: str) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(provider, model)
    return caught.value


async def test_stream_yields_text_tool_deltas_and_final_chunk() -> None:
    async with bedrock_server() as (url, state), lazy_provider(url) as provider:
        chunks = await collect(provider, "anthropic.claude-test")
    assert state.bodies[0]["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    assert "".join(c.text for c in chunks) == "Hello"
    calls = [call for c in chunks for call in c.tool_calls or []]
    assert calls[0] == {
        "index": 0,
        "id": "tu_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a": 1}'
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (9, 5)
    assert all(c.finish_reason is None for c in chunks[:-1])


async def test_stream_without_message_stop_has_no_final_chunk() -> None:
    async with bedrock_server() as (url, _), lazy_provider(url) as provider:
        chunks = await collect(provider, "cut")
    assert "".join(c.text for c in chunks) == "Hello"
    assert all(c.finish_reason is None for c in chunks)


async def test_stream_errors_map_onto_the_taxonomy() -> None:
    async with bedrock_server() as (url, _), lazy_provider(url) as provider:
        throttled = await stream_failure(provider, "throttled")
        mid_stream = await stream_failure(provider, "throttled-mid-stream")
        invalid = await stream_failure(provider, "invalid-mid-stream")
    assert (throttled.kind, throttled.status) == (ErrorKind.RETRYABLE, 429)
    assert (mid_stream.kind, mid_stream.status) == (ErrorKind.RETRYABLE, 429)
    assert (invalid.kind, invalid.status) == (ErrorKind.REQUEST, 400)


async def test_dropped_connection_mid_stream_is_retryable() -> None:
    async with bedrock_server() as (url, _), lazy_provider(url) as provider:
        dropped = await stream_failure(provider, "dropped")
    assert dropped.kind is ErrorKind.RETRYABLE


async def test_read_timeout_and_unreachable_endpoint_are_retryable() -> None:
    async with bedrock_server() as (url, _), lazy_provider(url, total_s=0.2) as provider:
        slow = await stream_failure(provider, "slow")
        stalled = await stream_failure(provider, "hang")
    assert (slow.kind, slow.code) == (ErrorKind.RETRYABLE, "timeout_read")
    assert (stalled.kind, stalled.code) == (ErrorKind.RETRYABLE, "timeout_read")
    async with lazy_provider(url) as provider:
        unreachable = await stream_failure(provider, "m")
    assert (unreachable.kind, unreachable.code) == (ErrorKind.RETRYABLE, "connection_error")


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bedrock-stream"]


async def test_leaving_a_stream_early_closes_it_and_ends_the_reader_thread() -> None:
    async with bedrock_server() as (url, state), lazy_provider(url) as provider:
        stream = provider.stream(chat(), "hang")
        first = await anext(stream)  # type: ignore[call-overload]
        assert first.text == "Hel"
        assert reader_threads()
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(state.disconnected.wait(), 2)
        for _ in range(200):
            if not reader_threads():
                break
            await asyncio.sleep(0.01)
        assert not reader_threads()


# --- the thread/queue plumbing and the translator on their own --------------------------------


async def test_iterate_in_thread_passes_items_and_errors_and_closes() -> None:
    closed: list[bool] = []

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    received: list[int] = []
    with pytest.raises(ValueError, match="boom"):
        async for item in iterate_in_thread(failing(), close=lambda: closed.append(True)):
            received.append(item)
    assert received == [1]
    assert closed == [True]
    items = [i async for i in iterate_in_thread(range(5), close=lambda: closed.append(True))]
    assert items == [0, 1, 2, 3, 4]
    assert closed == [True, True]


async def test_iterate_in_thread_interrupts_a_blocked_read_when_left_early() -> None:
    released = threading.Event()
    closed = threading.Event()

    def blocking() -> Iterator[str]:
        yield "first"
        released.wait(5)
        yield "after release"

    reader = iterate_in_thread(blocking(), close=closed.set, interrupt=released.set)
    assert await anext(reader) == "first"
    await reader.aclose()
    assert released.is_set()
    assert await asyncio.to_thread(closed.wait, 2)


def test_translator_ignores_unknown_events_and_passes_reasoning_on() -> None:
    translator = StreamTranslator()
    assert translator.feed({"messageStart": {"role": "assistant"}}) is None
    reasoning = translator.feed(
        {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "."}}}}
    )
    assert reasoning is not None and reasoning.thinking == "." and not reasoning.text
    assert translator.feed({"somethingNew": {}}) is None
    assert translator.final() is None
    translator.feed({"messageStop": {"stopReason": "max_tokens"}})
    final = translator.final()
    assert final is not None and final.finish_reason == "length" and final.usage is None
