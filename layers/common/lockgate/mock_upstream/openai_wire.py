"""OpenAI Chat Completions as the official SDK expects it, byte for byte where it matters."""

from __future__ import annotations

import time
from typing import Any

import orjson

from lockgate.mock_upstream.answers import (
    Answer,
    Digest,
    Finish,
    Tool,
    estimate_tokens,
    optional_int,
    scan_messages,
    wants_tool,
)
from lockgate.mock_upstream.wire import StreamPlan

_FINISH = {Finish.STOP: "stop", Finish.LENGTH: "length", Finish.TOOL: "tool_calls"}
_FINGERPRINT = "fp_lockgate_mock"
_DONE = b"data: [DONE]\n\n"


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class OpenAIWire:
    """``POST /v1/chat/completions``: JSON ``chat.completion`` or ``chat.completion.chunk`` SSE."""

    malformed_frame = b"data: {not json\n\n"
    error_frame = _data(
        {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    )

    def digest(self, body: dict[str, Any]) -> Digest:
        conversation = scan_messages(body.get("messages"))
        stream_options = body.get("stream_options")
        max_tokens = optional_int(body.get("max_completion_tokens"))
        return Digest(
            seed_text=conversation.last_user_text,
            prompt_tokens=estimate_tokens(conversation.chars),
            max_tokens=optional_int(body.get("max_tokens")) if max_tokens is None else max_tokens,
            tool=wants_tool(conversation, _first_tool(body.get("tools"))),
            stream=body.get("stream") is True,
            include_usage=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True,
        )

    def render(self, answer: Answer, digest: Digest, model: str, serial: int) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.tool is not None:
            message["content"] = None
            message["tool_calls"] = [_tool_call(answer.tool, serial, answer.text)]
        return orjson.dumps(
            {
                "id": _completion_id(serial),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": _FINGERPRINT,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _FINISH[answer.finish],
                    }
                ],
                "usage": _usage(answer, digest),
            }
        )

    def render_stream(self, answer: Answer, digest: Digest, model: str, serial: int) -> StreamPlan:
        envelope = {
            "id": _completion_id(serial),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": _FINGERPRINT,
        }
        frame = _ChunkFramer(envelope, digest.include_usage)
        if answer.tool is None:
            head = frame.delta({"role": "assistant", "content": "", "refusal": None})
            chunks = tuple(frame.delta({"content": piece}) for piece in answer.pieces)
        else:
            head = frame.delta(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"index": 0, **_tool_call(answer.tool, serial, "")}],
                    "refusal": None,
                }
            )
            chunks = tuple(
                frame.delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in answer.pieces
            )
        tail = frame.finish(_FINISH[answer.finish])
        if digest.include_usage:
            tail += frame.usage(_usage(answer, digest))
        return StreamPlan(head, chunks, tail + _DONE)

    def error_body(self, status: int, message: str) -> bytes:
        kind, code = _error_kind(status)
        return orjson.dumps(
            {"error": {"message": message, "type": kind, "param": None, "code": code}}
        )


class _ChunkFramer:
    """Encodes ``data: {chunk}`` frames around a shared envelope, serialised once."""

    def __init__(self, envelope: dict[str, Any], include_usage: bool) -> None:
        self._envelope = envelope
        self._include_usage = include_usage
        opening = orjson.dumps(envelope)[:-1]
        self._prefix = b"data: " + opening + b',"choices":[{"index":0,"delta":'
        closing = b',"logprobs":null,"finish_reason":null}]'
        self._suffix = closing + (b',"usage":null' if include_usage else b"") + b"}\n\n"

    def delta(self, delta: dict[str, Any]) -> bytes:
        return self._prefix + orjson.dumps(delta) + self._suffix

    def finish(self, reason: str) -> bytes:
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        chunk: dict[str, Any] = {**self._envelope, "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return _data(chunk)

    def usage(self, usage: dict[str, int]) -> bytes:
        return _data({**self._envelope, "choices": [], "usage": usage})


def _completion_id(serial: int) -> str:
    return f"chatcmpl-mock{serial:012d}"


def _tool_call(tool: Tool, serial: int, arguments: str) -> dict[str, Any]:
    return {
        "id": f"call_mock{serial:012d}",
        "type": "function",
        "function": {"name": tool.name, "arguments": arguments},
    }


def _usage(answer: Answer, digest: Digest) -> dict[str, int]:
    return {
        "prompt_tokens": digest.prompt_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": digest.prompt_tokens + answer.output_tokens,
    }


def _first_tool(tools: Any) -> Tool | None:
    """The first ``{"type": "function", "function": {...}}`` entry, if any."""
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    function = tools[0].get("function")
    if not isinstance(function, dict):
        return None
    name = function.get("name")
    return Tool(name if isinstance(name, str) else "tool", function.get("parameters"))


def _error_kind(status: int) -> tuple[str, str | None]:
    """OpenAI's ``type`` and ``code`` for a status, as its API reports them."""
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None
