"""Canonical (OpenAI-shaped) requests → Messages API arguments, and Messages → canonical results.

The Messages API differs from chat completions in ways a gateway has to absorb: the system
prompt is a top-level field, roles must alternate (so consecutive same-role turns are merged),
tool results are `tool_result` blocks inside a user turn, tool calls are `tool_use` blocks with
parsed (not string) input, and `max_tokens` is mandatory.
"""

from __future__ import annotations

import json
from typing import Any

from lockgate.chat import ChatMessage, ChatRequest, ChatResult, Usage
from lockgate.providers.errors import ErrorKind, ProviderError

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

MAX_TEMPERATURE = 1.0
"""Anthropic accepts 0..1 where OpenAI accepts 0..2; clamping keeps an OpenAI client's request
servable instead of turning it into a 400 that no fallback could fix."""

_FORWARDED_EXTRAS = ("top_k",)
"""Non-OpenAI fields that mean the same thing to Anthropic; everything else unknown is dropped,
because the Messages API rejects parameters it does not know."""


def request_error(message: str) -> ProviderError:
    return ProviderError(message, kind=ErrorKind.REQUEST, status=400, code="invalid_request")


def unsupported(message: str) -> ProviderError:
    """A feature this target lacks: another target may have it, so fall back rather than fail."""
    return ProviderError(message, kind=ErrorKind.TARGET, code="unsupported_feature")


def finish_reason(stop_reason: str | None) -> str:
    return STOP_REASONS.get(stop_reason or "end_turn", "stop")


def request_arguments(request: ChatRequest, model: str, default_max_tokens: int) -> dict[str, Any]:
    """Keyword arguments for `messages.create`, minus `stream`."""
    if request.n is not None and request.n > 1:
        raise unsupported("Anthropic cannot return more than one choice (n > 1)")
    system, messages = split_messages(request.messages)
    arguments: dict[str, Any] = {
        "model": model,
        "max_tokens": request.output_limit or default_max_tokens,
        "messages": messages,
    }
    if system:
        arguments["system"] = system
    if request.stop_list:
        arguments["stop_sequences"] = request.stop_list
    if request.user:
        arguments["metadata"] = {"user_id": request.user}
    arguments.update(tool_arguments(request))
    extra = sampling_arguments(request)
    if extra:
        arguments["extra_body"] = extra
    return arguments


def sampling_arguments(request: ChatRequest) -> dict[str, Any]:
    """Sampling parameters the SDK no longer types but the API still accepts."""
    body: dict[str, Any] = {}
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, MAX_TEMPERATURE)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    extras = request.model_extra or {}
    body.update({key: extras[key] for key in _FORWARDED_EXTRAS if extras.get(key) is not None})
    return body


def split_messages(
    messages: list[ChatMessage],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System text blocks, and alternating user/assistant turns with merged content blocks."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            system.extend(_text_blocks(message))
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        turn["content"] = _tool_results_first(turn["content"])
    return system, turns


def _tool_results_first(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic requires a user turn's tool results to precede any other content."""
    results = [b for b in blocks if b["type"] == "tool_result"]
    if not results:
        return blocks
    return results + [b for b in blocks if b["type"] != "tool_result"]


def _turn(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "user":
        return "user", _user_blocks(message)
    if message.role == "assistant":
        return "assistant", _text_blocks(message) + _tool_use_blocks(message)
    if message.role == "tool":
        return "user", [_tool_result_block(message)]
    raise request_error("the legacy 'function' role is not supported; send tool messages instead")


def _text_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    """Text blocks; Anthropic rejects empty text blocks, so they are left out."""
    if isinstance(message.content, list):
        texts = [str(p.get("text", "")) for p in message.content if p.get("type") == "text"]
    else:
        texts = [message.content or ""]
    return [{"type": "text", "text": text} for text in texts if text]


def _user_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if not isinstance(message.content, list):
        return _text_blocks(message)
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
        elif kind == "image_url":
            blocks.append(image_block(part))
        else:
            raise unsupported(f"content part type {kind!r} is not supported by Anthropic")
    return blocks


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI `image_url` part as an Anthropic image: data URLs inline, others by URL."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise request_error("image_url part without a url")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, sep, data = url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0]
    if not sep or ";base64" not in header or not media_type.startswith("image/"):
        raise request_error("image data URLs must be base64 'data:image/...;base64,...'")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _tool_use_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = []
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": parse_arguments(function.get("arguments")),
            }
        )
    return blocks


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (a JSON string in OpenAI's shape) as the object Anthropic expects."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        raise request_error("tool call arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise request_error("tool call arguments must be a JSON object")
    return value


def _tool_result_block(message: ChatMessage) -> dict[str, Any]:
    if not message.tool_call_id:
        raise request_error("a tool message needs a tool_call_id")
    return {
        "type": "tool_result",
        "tool_use_id": message.tool_call_id,
        "content": message.text(),
    }


def tool_arguments(request: ChatRequest) -> dict[str, Any]:
    """`tools` and `tool_choice`; OpenAI's `parallel_tool_calls=false` rides on the choice."""
    arguments: dict[str, Any] = {}
    if request.tools:
        arguments["tools"] = [_tool(tool) for tool in request.tools]
    choice = _tool_choice(request.tool_choice) if request.tools else None
    if choice is None:
        return arguments
    serial = (request.model_extra or {}).get("parallel_tool_calls") is False
    if serial and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    arguments["tool_choice"] = choice
    return arguments


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
        raise unsupported(f"tool type {tool.get('type')!r} is not supported by Anthropic")
    function = tool["function"]
    converted: dict[str, Any] = {
        "name": function.get("name") or "",
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mapped = {"auto": "auto", "required": "any", "none": "none"}.get(choice)
        if mapped is None:
            raise request_error(f"unknown tool_choice {choice!r}")
        return {"type": mapped}
    name = (choice.get("function") or {}).get("name")
    if not name:
        raise request_error("tool_choice object needs function.name")
    return {"type": "tool", "name": name}


def result_from(message: Any) -> ChatResult:
    """A buffered `Message` as a canonical result."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            tool_calls.append(tool_call(block.id, block.name, json.dumps(block.input)))
    return ChatResult(
        text="".join(texts),
        finish_reason=finish_reason(message.stop_reason),
        usage=Usage(
            prompt_tokens=input_tokens(message.usage),
            completion_tokens=message.usage.output_tokens or 0,
        ),
        tool_calls=tool_calls or None,
    )


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
"""Anthropic reports cache reads and writes apart from `input_tokens`; the prompt is all three."""


def input_tokens(usage: Any) -> int:
    return sum(getattr(usage, field, None) or 0 for field in INPUT_FIELDS)
