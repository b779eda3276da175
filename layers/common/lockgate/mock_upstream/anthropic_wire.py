"""Anthropic Messages as the official SDK expects it, with the real streaming event sequence."""

from __future__ import annotations

from typing import Any

import orjson

from lockgate.mock_upstream.answers import (
    Answer,
    Digest,
    Finish,
    Tool,
    content_text,
    estimate_tokens,
    optional_int,
    scan_messages,
    wants_tool,
)
from lockgate.mock_upstream.wire import StreamPlan

_STOP_REASON = {Finish.STOP: "end_turn", Finish.LENGTH: "max_tokens", Finish.TOOL: "tool_use"}
_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicWire:
    """``POST /v1/messages``: a JSON ``message`` or ``event: NAME`` / ``data: {...}`` SSE."""

    malformed_frame = b"event: content_block_delta\ndata: {not json\n\n"
    error_frame = _event(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )

    def digest(self, body: dict[str, Any]) -> Digest:
        conversation = scan_messages(body.get("messages"))
        system_chars = len(content_text(body.get("system")))
        return Digest(
            seed_text=conversation.last_user_text,
            prompt_tokens=estimate_tokens(conversation.chars + system_chars),
            max_tokens=optional_int(body.get("max_tokens")),
            tool=wants_tool(conversation, _first_tool(body.get("tools"))),
            stream=body.get("stream") is True,
        )

    def render(self, answer: Answer, digest: Digest, model: str, serial: int) -> bytes:
        if answer.tool is None:
            block: dict[str, Any] = {"type": "text", "text": answer.text}
        else:
            block = _tool_block(answer.tool, serial, orjson.loads(answer.text))
        return orjson.dumps(
            {
                "id": _message_id(serial),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": _STOP_REASON[answer.finish],
                "stop_sequence": None,
                "usage": {
                    "input_tokens": digest.prompt_tokens,
                    "output_tokens": answer.output_tokens,
                },
            }
        )

    def render_stream(self, answer: Answer, digest: Digest, model: str, serial: int) -> StreamPlan:
        message: dict[str, Any] = {
            "id": _message_id(serial),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": digest.prompt_tokens, "output_tokens": 1},
        }
        if answer.tool is None:
            block: dict[str, Any] = {"type": "text", "text": ""}
            prefix = _delta_prefix("text_delta", "text")
        else:
            block = _tool_block(answer.tool, serial, {})
            prefix = _delta_prefix("input_json_delta", "partial_json")
        head = (
            _event("message_start", {"type": "message_start", "message": message})
            + _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
            + _event("ping", {"type": "ping"})
        )
        chunks = tuple(prefix + orjson.dumps(piece) + b"}}\n\n" for piece in answer.pieces)
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP_REASON[answer.finish], "stop_sequence": None},
            "usage": {"output_tokens": answer.output_tokens},
        }
        tail = (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event("message_delta", message_delta)
            + _event("message_stop", {"type": "message_stop"})
        )
        return StreamPlan(head, chunks, tail)

    def error_body(self, status: int, message: str) -> bytes:
        kind = _ERROR_TYPE.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def _delta_prefix(delta_type: str, field: str) -> bytes:
    """Everything of a ``content_block_delta`` frame before the piece's JSON string."""
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"' + delta_type.encode() + b'","' + field.encode() + b'":'
    )


def _message_id(serial: int) -> str:
    return f"msg_mock{serial:016d}"


def _tool_block(tool: Tool, serial: int, arguments: Any) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": f"toolu_mock{serial:014d}",
        "name": tool.name,
        "input": arguments,
    }


def _first_tool(tools: Any) -> Tool | None:
    """The first ``{"name": ..., "input_schema": {...}}`` entry, if any."""
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    name = tools[0].get("name")
    return Tool(name if isinstance(name, str) else "tool", tools[0].get("input_schema"))
