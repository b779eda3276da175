"""The Responses API wire: input items to canonical messages, and stream events that the
`openai` SDK's own event models accept (validated with pydantic against its types)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lockgate.api.errors import GatewayError
from lockgate.api.responses import (
    ResponseShell,
    ResponsesStreamEncoder,
    input_messages,
    parse_request,
    to_chat_request,
)
from lockgate.chat import ChatChunk, Usage
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def events(frames: bytes) -> list[dict[str, Any]]:
    out = []
    for block in frames.decode().strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        payload = json.loads(data.removeprefix("data: "))
        assert kind == f"event: {payload['type']}"
        EVENTS.validate_python(payload)  # the SDK's model for this event accepts it
        out.append(payload)
    return out


def encoder() -> ResponsesStreamEncoder:
    request = parse_request(b'{"model": "m", "input": "hi", "stream": true}')
    return ResponsesStreamEncoder(ResponseShell(request, "m"))


def test_items_become_canonical_messages() -> None:
    request = parse_request(
        json.dumps(
            {
                "model": "m",
                "instructions": "Be terse.",
                "input": [
                    {"role": "developer", "content": "Use metric units."},
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {"type": "input_image", "image_url": "https://x/y.png"},
                        ],
                    },
                    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                    {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "one"},
                    {"type": "function_call_output", "call_id": "c2", "output": "two"},
                ],
                "text": {"format": {"type": "json_object"}},
                "max_output_tokens": 50,
            }
        ).encode()
    )
    chat = to_chat_request(request, [])
    roles = [m.role for m in chat.messages]
    assert roles == ["system", "developer", "user", "assistant", "tool", "tool"]
    assert [c["id"] for c in chat.messages[3].tool_calls or []] == ["c1", "c2"]
    assert chat.messages[2].content == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]
    assert chat.response_format == {"type": "json_object"}
    assert chat.max_tokens == 50 and chat.dialect == "responses"
    assert len(input_messages(request)) == 5  # the instructions are not part of the turn


@pytest.mark.parametrize(
    "item",
    [
        {"type": "file_search_call", "id": "x"},
        {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]},
        {"role": "tool", "content": "x"},
    ],
)
def test_unsupported_items_are_a_clear_400(item: dict[str, Any]) -> None:
    request = parse_request(json.dumps({"model": "m", "input": [item]}).encode())
    with pytest.raises(GatewayError) as caught:
        to_chat_request(request, [])
    assert caught.value.status == 400 and "not supported" in caught.value.message


def test_stream_events_are_what_the_sdk_parses() -> None:
    stream = encoder()
    frames = stream.start()
    frames += stream.chunk(ChatChunk(thinking="hmm", signature=""))
    frames += stream.chunk(ChatChunk(signature="sig"))
    frames += stream.chunk(ChatChunk(text="Hello"))
    frames += stream.chunk(
        ChatChunk(
            tool_calls=[{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]
        )
    )
    frames += stream.chunk(ChatChunk(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}]))
    frames += stream.finish("tool_calls", Usage(10, 5))
    parsed = events(frames)
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    final = parsed[-1]["response"]
    assert parsed[-1]["type"] == "response.completed"
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][0]["encrypted_content"] == "sig"
    assert final["output"][2]["arguments"] == '{"a": 1}'
    assert final["usage"]["total_tokens"] == 15


def test_a_failure_mid_stream_ends_with_error_and_failed_not_completed() -> None:
    stream = encoder()
    frames = stream.start() + stream.chunk(ChatChunk(text="partial"))
    frames += stream.error(GatewayError(502, "upstream cut", code="stream_cut"))
    parsed = events(frames)
    assert [e["type"] for e in parsed[-2:]] == ["error", "response.failed"]
    assert parsed[-1]["response"]["error"]["message"] == "upstream cut"
    assert "response.completed" not in [e["type"] for e in parsed]


def test_a_length_stop_is_incomplete() -> None:
    stream = encoder()
    frames = stream.start() + stream.chunk(ChatChunk(text="cut")) + stream.finish("length", Usage())
    last = events(frames)[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_buffered_response_is_a_valid_sdk_response() -> None:
    from lockgate.api.responses import output_items
    from lockgate.chat import ChatResult
    from openai.types.responses import Response

    request = parse_request(b'{"model": "m", "input": "hi", "instructions": "Be brief."}')
    result = ChatResult(
        text="Hello.",
        finish_reason="tool_calls",
        usage=Usage(12, 4, cache_read_tokens=8),
        tool_calls=[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        thinking=[{"type": "thinking", "thinking": "hmm", "signature": "s"}],
    )
    body = ResponseShell(request, "m").body(
        "completed", output_items(result), result.usage, result.finish_reason
    )
    response = Response.model_validate(body, strict=False)
    assert response.output_text == "Hello."
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 8
