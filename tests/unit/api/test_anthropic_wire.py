"""The gateway's Messages API wire format.

The stream encoder's bytes are served from 127.0.0.1 and read by the real `anthropic` SDK, so
these tests prove Anthropic clients accumulate the gateway's stream exactly as they would
Anthropic's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import pytest
from aiohttp import web
from lockgate.api.anthropic import (
    MessagesRequest,
    MessagesStreamEncoder,
    anthropic_error_body,
    to_chat_request,
    to_messages_response,
)
from lockgate.api.errors import GatewayError
from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.policy import AnthropicProviderConfig, Timeouts
from lockgate.providers.anthropic import AnthropicProvider
from lockgate.providers.anthropic.translate import request_arguments

from tests.support.servers import serve

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

CONVERSATION: dict[str, Any] = {
    "model": "claude-alias",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "Thanks. And this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.3,
    "top_p": 0.8,
    "top_k": 40,
    "metadata": {"user_id": "u-7"},
}


def test_to_chat_request_builds_the_canonical_shape() -> None:
    chat = to_chat_request(MessagesRequest.model_validate({**CONVERSATION, "stream": True}))
    dumped = [m.model_dump(exclude_none=True) for m in chat.messages]
    assert dumped == [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Be brief."},
                {"type": "text", "text": "Be kind."},
            ],
        },
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "toolu_1"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Thanks. And this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ]
    assert chat.model == "claude-alias"
    assert (chat.max_tokens, chat.temperature, chat.top_p) == (256, 0.3, 0.8)
    assert chat.stop == ["END"]
    assert chat.user == "u-7"
    assert chat.stream and chat.wants_stream_usage
    assert chat.tool_choice == "auto"
    assert (chat.model_extra or {}).get("parallel_tool_calls") is False
    # top_k rides along for Anthropic and Bedrock targets; an OpenAI target never sees it.
    assert (chat.model_extra or {}).get("top_k") == 40
    assert chat.dialect == "anthropic"
    assert chat.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "Current weather",
            },
        }
    ]


def test_round_trip_through_the_anthropic_provider_restores_the_request() -> None:
    """Messages → canonical → Messages (the Anthropic adapter) loses nothing that matters."""
    chat = to_chat_request(MessagesRequest.model_validate(CONVERSATION))
    arguments = request_arguments(chat, "claude-real", default_max_tokens=1)
    assert arguments["system"] == CONVERSATION["system"]
    first = {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}
    assert arguments["messages"] == [first, *CONVERSATION["messages"][1:]]
    assert arguments["tools"] == [WEATHER_TOOL]
    assert arguments["tool_choice"] == CONVERSATION["tool_choice"]
    assert arguments["stop_sequences"] == ["END"]
    assert arguments["max_tokens"] == 256
    assert arguments["metadata"] == {"user_id": "u-7"}
    assert arguments["extra_body"] == {"temperature": 0.3, "top_p": 0.8, "top_k": 40}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    request = MessagesRequest.model_validate({**CONVERSATION, "tool_choice": choice})
    assert to_chat_request(request).tool_choice == expected


@pytest.mark.parametrize(
    "change",
    [
        {"tool_choice": {"type": "tool"}},
        {"system": None, "messages": [{"role": "user", "content": []}]},
    ],
)
def test_unsupported_input_is_a_400(change: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        to_chat_request(MessagesRequest.model_validate({**CONVERSATION, **change}))
    assert caught.value.status == 400


def test_blocks_and_tools_without_a_canonical_form_reach_an_anthropic_target_unchanged() -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
        "cache_control": {"type": "ephemeral"},
    }
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    request = MessagesRequest.model_validate(
        {
            **CONVERSATION,
            "messages": [{"role": "user", "content": [document]}],
            "tools": [server_tool],
            "tool_choice": None,
            "service_tier": "auto",
        }
    )
    arguments = request_arguments(to_chat_request(request), "claude-real", default_max_tokens=1)
    assert arguments["messages"] == [{"role": "user", "content": [document]}]
    assert arguments["tools"] == [server_tool]
    assert arguments["extra_body"]["service_tier"] == "auto"


def test_request_model_requires_max_tokens_and_keeps_unknown_fields() -> None:
    with pytest.raises(ValueError):
        MessagesRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
    request = MessagesRequest.model_validate(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "x": 1}
    )
    assert request.model_extra == {"x": 1}
    assert request.system is None and request.stream is False


def test_to_messages_response_is_a_valid_sdk_message() -> None:
    result = ChatResult(
        text="Let me check.",
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=11, completion_tokens=4),
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    )
    body = to_messages_response(result, model="claude-alias", message_id="msg_1")
    message = anthropic.types.Message.model_validate(body)
    assert message.id == "msg_1" and message.model == "claude-alias"
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text" and message.content[0].text == "Let me check."
    tool = message.content[1]
    assert tool.type == "tool_use" and tool.input == {"city": "Paris"} and tool.id == "call_1"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 4)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("x", "end_turn"),
    ],
)
def test_stop_reasons(finish: str, stop: str) -> None:
    body = to_messages_response(
        ChatResult(text="", finish_reason=finish), model="m", message_id="i"
    )
    assert body["stop_reason"] == stop
    assert body["content"] == [{"type": "text", "text": ""}]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_body(status: int, error_type: str) -> None:
    assert anthropic_error_body(status, "nope") == {
        "type": "error",
        "error": {"type": error_type, "message": "nope"},
    }


TEXT_AND_TOOL = [
    ChatChunk(text="Hel"),
    ChatChunk(text="lo"),
    ChatChunk(
        tool_calls=[
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    ),
    ChatChunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
    ChatChunk(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
    ChatChunk(
        tool_calls=[
            {"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}}
        ]
    ),
    ChatChunk(finish_reason="tool_calls", usage=Usage(12, 9)),
]


def encode(chunks: list[ChatChunk], *, fail: bool = False) -> bytes:
    encoder = MessagesStreamEncoder(model="claude-alias", message_id="msg_9", input_tokens=12)
    frames = [encoder.start(), *(encoder.chunk(c) for c in chunks)]
    if fail:
        frames.append(encoder.error(GatewayError(529, "upstream overloaded")))
    else:
        final = chunks[-1]
        frames.append(encoder.finish(final.finish_reason or "stop", final.usage or Usage()))
    return b"".join(frames)


@asynccontextmanager
async def serving(body: bytes) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for frame in body.split(b"\n\n")[:-1]:
            await response.write(frame + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", handler)
    async with serve(app) as url:
        yield url


async def sdk_final_message(body: bytes) -> anthropic.types.Message:
    async with serving(body) as url:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0)
        try:
            async with client.messages.stream(
                model="claude-alias", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                return await stream.get_final_message()
        finally:
            await client.close()


async def test_the_real_sdk_accumulates_the_encoded_stream() -> None:
    message = await sdk_final_message(encode(TEXT_AND_TOOL))
    assert message.id == "msg_9"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Hello"  # type: ignore[union-attr]
    first, second = message.content[1], message.content[2]
    assert first.type == "tool_use" and second.type == "tool_use"
    assert (first.id, first.name, first.input) == ("call_1", "get_weather", {"city": "Paris"})
    assert (second.id, second.name, second.input) == ("call_2", "get_time", {})
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 9)


async def test_an_empty_answer_still_has_one_text_block() -> None:
    message = await sdk_final_message(
        encode([ChatChunk(finish_reason="length", usage=Usage(3, 0))])
    )
    assert [block.type for block in message.content] == ["text"]
    assert message.stop_reason == "max_tokens"


async def test_the_real_sdk_raises_on_an_error_frame() -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        await sdk_final_message(encode(TEXT_AND_TOOL[:2], fail=True))
    assert caught.value.type == "overloaded_error"
    assert caught.value.api_message == "upstream overloaded"


async def test_the_gateway_stream_feeds_the_anthropic_adapter_back_unchanged() -> None:
    """Encoder → wire → adapter: the adapter's chunks equal what the encoder was given."""
    async with serving(encode(TEXT_AND_TOOL)) as url:
        config = AnthropicProviderConfig(kind="anthropic", base_url=url, api_key="k")
        adapter = AnthropicProvider("a", config, Timeouts())
        request = ChatRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        try:
            chunks = [c async for c in adapter.stream(request, "m")]
        finally:
            await adapter.aclose()
    assert "".join(c.text for c in chunks) == "Hello"
    calls = [call for c in chunks for call in c.tool_calls or []]
    assert calls[0]["id"] == "call_1" and calls[0]["function"]["name"] == "get_weather"
    assert (
        "".join(c["function"]["arguments"] for c in calls if c["index"] == 0) == '{"city": "Paris"}'
    )
    assert [c["id"] for c in calls if "id" in c] == ["call_1", "call_2"]
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage == Usage(12, 9)


def test_sse_frames_are_exactly_event_and_data_lines() -> None:
    body = encode([ChatChunk(text="hi"), ChatChunk(finish_reason="stop", usage=Usage(1, 1))])
    frames = body.split(b"\n\n")[:-1]
    names = [frame.split(b"\n")[0].removeprefix(b"event: ").decode() for frame in frames]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(frame.split(b"\n")[1].startswith(b"data: {") for frame in frames)
    assert body.endswith(b"\n\n")
    encoder = MessagesStreamEncoder("m", "i", 1)
    assert encoder.chunk(ChatChunk(finish_reason="stop")) == b""


def test_the_matched_stop_sequence_survives_the_round_trip() -> None:
    """An Anthropic target's `stop_sequence` reaches an Anthropic client, buffered and
    streamed (events built and read back as the SDK's own types)."""
    from lockgate.api.anthropic import MessagesStreamEncoder
    from lockgate.providers.anthropic.stream import StreamTranslator
    from lockgate.providers.anthropic.translate import result_from

    message = anthropic.types.Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [{"type": "text", "text": "1, 2, 3"}],
            "stop_reason": "stop_sequence",
            "stop_sequence": "END",
            "usage": {"input_tokens": 5, "output_tokens": 4},
        }
    )
    body = to_messages_response(result_from(message), model="claude", message_id="msg_2")
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")

    translator = StreamTranslator()
    delta = anthropic.types.RawMessageDeltaEvent.model_validate(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
            "usage": {"output_tokens": 4},
        }
    )
    translator.feed(delta.model_dump())
    final = translator.feed(anthropic.types.RawMessageStopEvent(type="message_stop").model_dump())
    assert final is not None and final.stop_sequence == "END"
    encoder = MessagesStreamEncoder(model="claude", message_id="msg_3", input_tokens=5)
    encoder.chunk(final)
    frames = encoder.finish(final.finish_reason or "stop", final.usage or Usage())
    data = frames.decode().split("event: message_delta\ndata: ")[1].split("\n")[0]
    event = anthropic.types.RawMessageDeltaEvent.model_validate_json(data)
    assert (event.delta.stop_reason, event.delta.stop_sequence) == ("stop_sequence", "END")


def test_an_openai_assistant_refusal_reaches_anthropic_as_what_it_said() -> None:
    chat = ChatRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot."}]},
                {"role": "user", "content": "ok"},
            ],
        }
    )
    assistant = request_arguments(chat, "claude", default_max_tokens=8)["messages"][1]
    assert assistant == {"role": "assistant", "content": [{"type": "text", "text": "I cannot."}]}
