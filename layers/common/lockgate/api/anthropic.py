"""Anthropic's Messages API on the gateway side: request model, responses, stream frames, errors.

Anthropic clients talk to the gateway in their own protocol; everything behind the route works
on the canonical (OpenAI-shaped) request, so this module translates once on the way in and once
on the way out. The stream encoder reproduces Anthropic's event sequence exactly, because the
official SDKs accumulate messages by block index and reject events out of order.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lockgate.api.errors import GatewayError, bad_request
from lockgate.api.openai import extension
from lockgate.api.sse import event_frame
from lockgate.chat import ChatChunk, ChatMessage, ChatRequest, ChatResult, Usage
from lockgate.providers.blocks import NATIVE_PART

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


class TextBlock(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MessagesRequest(BaseModel):
    """A Messages API request; fields without a canonical form travel on untouched to an
    Anthropic target."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stream: bool = False
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    lockgate: dict[str, Any] | None = None


def to_chat_request(req: MessagesRequest) -> ChatRequest:
    """The canonical request for a Messages request.

    Prompt-cache markers ride on the canonical parts and tools as `cache_control`; thinking
    blocks of earlier turns as the assistant message's `thinking_blocks`; blocks and tools
    with no canonical form as native parts. A stream always asks for usage: Anthropic's
    final event reports output tokens.
    """
    messages = _system_messages(req.system)
    for message in req.messages:
        messages.extend(_chat_messages(message))
    fields: dict[str, Any] = {
        "model": req.model,
        "messages": messages,
        "max_tokens": req.max_tokens,
        "stream": req.stream,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "stop": req.stop_sequences or None,
        "thinking": req.thinking,
        "lockgate": req.lockgate,
    }
    if req.stream:
        fields["stream_options"] = {"include_usage": True}
    if req.metadata and isinstance(req.metadata.get("user_id"), str):
        fields["user"] = req.metadata["user_id"]
    fields.update(_tool_fields(req))
    fmt = (req.output_config or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        fields["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt.get("schema") or {}},
        }
    native = dict(req.model_extra or {})
    if req.output_config:
        rest = {k: v for k, v in req.output_config.items() if k != "format"}
        if rest:
            native["output_config"] = rest
    try:
        chat = ChatRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        detail = exc.errors()[0]
        where = ".".join(str(part) for part in detail["loc"])
        raise bad_request(f"{where}: {detail['msg']}") from None
    return chat.spoken_in("anthropic", native)


def _system_messages(system: str | list[TextBlock] | None) -> list[ChatMessage]:
    if not system:
        return []
    if isinstance(system, str):
        return [ChatMessage(role="system", content=system)]
    parts: list[dict[str, Any]] = [_marked({"type": "text", "text": b.text}, b) for b in system]
    return [ChatMessage(role="system", content=parts)]


def _marked(part: dict[str, Any], block: Any) -> dict[str, Any]:
    """The part, with the block's prompt-cache marker when it has one."""
    control = block.get("cache_control") if isinstance(block, dict) else None
    if control is None and isinstance(block, BaseModel):
        control = (block.model_extra or {}).get("cache_control")
    if isinstance(control, dict):
        part["cache_control"] = control
    return part


def _chat_messages(message: InputMessage) -> list[ChatMessage]:
    if isinstance(message.content, str):
        return [ChatMessage(role=message.role, content=message.content)]
    if message.role == "assistant":
        return [_assistant_message(message.content)]
    return _user_messages(message.content)


def _assistant_message(blocks: list[dict[str, Any]]) -> ChatMessage:
    """Text as parts, `tool_use` blocks as OpenAI tool calls, thinking blocks kept apart."""
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append(_marked({"type": "text", "text": str(block.get("text", ""))}, block))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append({k: v for k, v in block.items() if k != "cache_control"})
        else:
            parts.append(_native(block))
    fields: dict[str, Any] = {
        "role": "assistant",
        "content": _content(parts) or None,
        "tool_calls": calls or None,
    }
    if thinking:
        fields["thinking_blocks"] = thinking
    return ChatMessage.model_validate(fields)


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One plain text as a string, so targets and caches see the simplest form."""
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return str(parts[0]["text"])
    return parts


def _native(block: dict[str, Any]) -> dict[str, Any]:
    return {"type": NATIVE_PART, "block": block}


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {"name": str(block.get("name", "")), "arguments": arguments},
    }


def _user_messages(blocks: list[dict[str, Any]]) -> list[ChatMessage]:
    """Tool results become `tool` messages, first, as OpenAI requires them to directly follow
    the assistant's tool calls; the rest stays one user message."""
    results: list[ChatMessage] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_result":
            results.append(_tool_message(block))
        elif kind == "text":
            parts.append(_marked({"type": "text", "text": str(block.get("text", ""))}, block))
        elif kind == "image":
            parts.append(_marked(_image_part(block), block))
        else:
            parts.append(_native(block))
    if parts:
        results.append(ChatMessage(role="user", content=_content(parts)))
    return results


def _tool_message(block: dict[str, Any]) -> ChatMessage:
    """A `tool_result` as a tool message: its text and images as parts, its cache marker on
    the last part, `is_error` kept for the targets that have it."""
    content = block.get("content")
    if content is not None and not isinstance(content, str | list):
        raise TypeError("a tool_result's content is a string or a list of blocks")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append({"type": "text", "text": content})
    for item in content if isinstance(content, list) else []:
        if item.get("type") == "text":
            parts.append({"type": "text", "text": str(item.get("text", ""))})
        elif item.get("type") == "image":
            parts.append(_image_part(item))
        else:
            raise _unsupported_block(item.get("type"))
    if parts and isinstance(block.get("cache_control"), dict):
        parts[-1]["cache_control"] = block["cache_control"]
    fields: dict[str, Any] = {
        "role": "tool",
        "tool_call_id": str(block.get("tool_use_id", "")),
        "content": _content(parts) if parts else "",
    }
    if block.get("is_error") is True:
        fields["is_error"] = True
    return ChatMessage.model_validate(fields)


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        raise bad_request(f"image source type {source.get('type')!r} is not supported")
    return {"type": "image_url", "image_url": {"url": url}}


def _unsupported_block(kind: Any) -> GatewayError:
    return bad_request(f"content block type {kind!r} is not supported", param="messages")


def _tool_fields(req: MessagesRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if req.tools:
        fields["tools"] = [_openai_tool(tool) for tool in req.tools]
    choice = req.tool_choice
    if choice is None:
        return fields
    if choice.type == "tool":
        if not choice.name:
            raise bad_request("tool_choice of type 'tool' needs a name", param="tool_choice")
        fields["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        fields["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        fields["parallel_tool_calls"] = False
    return fields


def _openai_tool(tool: Tool) -> dict[str, Any]:
    """A custom tool as an OpenAI function; a server tool (web search, code execution, ...)
    as a native tool that only an Anthropic target can take."""
    if tool.type not in (None, "custom"):
        return {"type": NATIVE_PART, "tool": tool.model_dump(exclude_none=True)}
    function: dict[str, Any] = {
        "name": tool.name,
        "parameters": tool.input_schema or {"type": "object", "properties": {}},
    }
    if tool.description:
        function["description"] = tool.description
    converted: dict[str, Any] = {"type": "function", "function": function}
    control = (tool.model_extra or {}).get("cache_control")
    if isinstance(control, dict):
        converted["cache_control"] = control
    return converted


def stop_reason(finish_reason: str, stop_sequence: str | None = None) -> str:
    if stop_sequence is not None and finish_reason == "stop":
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason, "end_turn")


def tool_input(arguments: str) -> dict[str, Any]:
    """Tool-call arguments as the object Anthropic clients expect; unparsable text is kept."""
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def to_messages_response(result: ChatResult, *, model: str, message_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = list(result.thinking or [])
    if result.text or not result.tool_calls:
        content.append({"type": "text", "text": result.text})
    for call in result.tool_calls or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments") or ""),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(result.finish_reason, result.stop_sequence),
        "stop_sequence": result.stop_sequence,
        "usage": _usage(result.usage),
        **extension(result.sources),
    }


def _usage(usage: Usage) -> dict[str, int]:
    """Anthropic's `input_tokens` leaves out the prompt-cache reads and writes, which have
    fields of their own."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.prompt_tokens - cached),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    error_type = ERROR_TYPES.get(status)
    if error_type is None:
        error_type = "api_error" if status >= 500 else "invalid_request_error"
    return {"type": "error", "error": {"type": error_type, "message": message}}


class MessagesStreamEncoder:
    """Canonical chunks → Messages stream frames for one response.

    Content blocks are opened lazily, when the first text or tool-call delta for them arrives,
    and closed when the next block starts or the message finishes; block indexes count up from
    zero without gaps, as clients index their accumulated content by them.
    """

    def __init__(self, model: str, message_id: str, input_tokens: int) -> None:
        self._model = model
        self._message_id = message_id
        self._input_tokens = input_tokens
        self._index = -1
        self._open: str | None = None
        self._tool_blocks: dict[int, int] = {}
        self._stop_sequence: str | None = None

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return event_frame("message_start", {"type": "message_start", "message": message})

    def chunk(self, c: ChatChunk) -> bytes:
        """Frames for one chunk; empty when it carries no content (e.g. only a finish reason)."""
        frames: list[bytes] = []
        if c.stop_sequence is not None:
            self._stop_sequence = c.stop_sequence
        if c.thinking or c.signature:
            frames.extend(self._thinking(c.thinking, c.signature))
        if c.text:
            frames.extend(self._text(c.text))
        for call in c.tool_calls or []:
            frames.extend(self._tool_call(call))
        return b"".join(frames)

    def _text(self, text: str) -> list[bytes]:
        frames = []
        if self._open != "text":
            frames.extend(self._open_block({"type": "text", "text": ""}, "text"))
        delta = {"type": "text_delta", "text": text}
        frames.append(self._delta(delta))
        return frames

    def _thinking(self, thinking: str, signature: str) -> list[bytes]:
        frames = []
        if self._open != "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
            frames.extend(self._open_block(block, "thinking"))
        if thinking:
            frames.append(self._delta({"type": "thinking_delta", "thinking": thinking}))
        if signature:
            frames.append(self._delta({"type": "signature_delta", "signature": signature}))
        return frames

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        """A tool-call delta: a new OpenAI tool index starts a `tool_use` block.

        A closed block cannot be reopened in this protocol, so arguments for an earlier call
        that arrive after a later one started are dropped; upstreams stream calls one by one.
        """
        frames: list[bytes] = []
        function = call.get("function") or {}
        index = int(call.get("index", len(self._tool_blocks)))
        kind = f"tool:{index}"
        if index not in self._tool_blocks:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self._message_id}_{index}",
                "name": function.get("name") or "",
                "input": {},
            }
            frames.extend(self._open_block(block, kind))
            self._tool_blocks[index] = self._index
        arguments = function.get("arguments")
        if arguments and self._open == kind:
            frames.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return frames

    def _open_block(self, block: dict[str, Any], kind: str) -> list[bytes]:
        frames = self._close_block()
        self._index += 1
        self._open = kind
        payload = {"type": "content_block_start", "index": self._index, "content_block": block}
        frames.append(event_frame("content_block_start", payload))
        return frames

    def _close_block(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        payload = {"type": "content_block_stop", "index": self._index}
        return [event_frame("content_block_stop", payload)]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        payload = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return event_frame("content_block_delta", payload)

    def finish(
        self,
        finish_reason: str,
        usage: Usage,
        sources: list[dict[str, Any]] | None = None,
        continued: dict[str, Any] | None = None,
    ) -> bytes:
        """Closes the open block, then `message_delta` (stop reason, usage) and `message_stop`.

        An answer with no content still gets one empty text block, as Anthropic sends.
        """
        frames: list[bytes] = []
        if self._index < 0:
            frames.extend(self._open_block({"type": "text", "text": ""}, "text"))
        frames.extend(self._close_block())
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(finish_reason, self._stop_sequence),
                "stop_sequence": self._stop_sequence,
            },
            "usage": _usage(usage)
            if usage.prompt_tokens
            else {
                "input_tokens": self._input_tokens,
                "output_tokens": usage.completion_tokens,
            },
            **extension(sources, continued),
        }
        frames.append(event_frame("message_delta", delta))
        frames.append(event_frame("message_stop", {"type": "message_stop"}))
        return b"".join(frames)

    def error(self, error: GatewayError) -> bytes:
        """A mid-stream failure, as Anthropic reports one: an `error` event, no message_stop."""
        return event_frame("error", anthropic_error_body(error.status, error.message))
