"""Canonical (OpenAI-shaped) requests → Messages API arguments, and Messages → canonical results.

The Messages API differs from chat completions in ways a gateway has to absorb: the system
prompt is a top-level field, roles must alternate (so consecutive same-role turns are merged),
tool results are `tool_result` blocks inside a user turn, tool calls are `tool_use` blocks with
parsed (not string) input, and `max_tokens` is mandatory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lockgate.chat import ChatRequest, ChatResult, Usage
from lockgate.providers import blocks

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
"""Anthropic accepts 0..1 where OpenAI accepts 0..2."""

_FORWARDED_EXTRAS = ("top_k",)
"""Non-OpenAI fields that mean the same thing to Anthropic; other unknown fields of an OpenAI
request are dropped, because the Messages API rejects parameters it does not know."""


def finish_reason(stop_reason: str | None) -> str:
    return blocks.finish_reason(STOP_REASONS, stop_reason)


def request_arguments(request: ChatRequest, model: str, default_max_tokens: int) -> dict[str, Any]:
    """Keyword arguments for `messages.create`, minus `stream`.

    A client that spoke the Messages API gets its fields without a canonical form (server
    tools' settings, `service_tier`, `container`, ...) passed on untouched in `extra_body`,
    with the `anthropic-beta` header they may depend on in `extra_headers`."""
    blocks.single_choice(request, "Anthropic")
    system, messages = blocks.split_messages(request.messages, BLOCKS)
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
    thinking = blocks.thinking_config(request)
    if thinking is not None:
        arguments["thinking"] = thinking
        if thinking.get("type") == "enabled":
            arguments["max_tokens"] = max(arguments["max_tokens"], thinking["budget_tokens"] + 1)
    schema = blocks.json_schema(request)
    if schema is not None:
        arguments["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    extra = sampling_arguments(request)
    if request.dialect == "anthropic":
        extra.update(request.native)
        if request.native_headers:
            arguments["extra_headers"] = dict(request.native_headers)
    if extra:
        arguments["extra_body"] = extra
    return arguments


def sampling_arguments(request: ChatRequest) -> dict[str, Any]:
    """Sampling parameters the SDK no longer types but the API still accepts."""
    body = blocks.sampling(request, top_p="top_p", max_temperature=MAX_TEMPERATURE)
    extras = request.model_extra or {}
    body.update({key: extras[key] for key in _FORWARDED_EXTRAS if extras.get(key) is not None})
    return body


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI `image_url` part as an Anthropic image: data URLs inline, others by URL."""
    url = blocks.image_url(part)
    if not isinstance(url, str) or not url:
        raise blocks.request_error("image_url part without a url")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, sep, data = url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0]
    if not sep or ";base64" not in header or not media_type.startswith("image/"):
        raise blocks.request_error("image data URLs must be base64 'data:image/...;base64,...'")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _tool_result(call_id: str, content: list[dict[str, Any]], is_error: bool) -> dict[str, Any]:
    """Text-only results travel as one string, as most clients send them."""
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if all(block["type"] == "text" for block in content):
        result["content"] = "".join(block["text"] for block in content)
    else:
        result["content"] = content
    if is_error:
        result["is_error"] = True
    return result


def _cache(content: list[dict[str, Any]], control: dict[str, Any]) -> None:
    content[-1]["cache_control"] = dict(control)


BLOCKS = blocks.BlockBuilders(
    target="Anthropic",
    text=lambda text: {"type": "text", "text": text},
    image=image_block,
    tool_use=lambda call_id, name, arguments: {
        "type": "tool_use",
        "id": call_id,
        "name": name,
        "input": arguments,
    },
    tool_result=_tool_result,
    is_tool_result=lambda block: block["type"] == "tool_result",
    cache=_cache,
    is_marker=lambda block: False,
    thinking=dict,
    native=dict,
)


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
    if tool.get("type") == blocks.NATIVE_PART:
        native: dict[str, Any] = dict(tool["tool"])
        return native
    function = blocks.function_of(tool, "Anthropic")
    converted: dict[str, Any] = {
        "name": function.get("name") or "",
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    if isinstance(tool.get("cache_control"), dict):
        converted["cache_control"] = tool["cache_control"]
    return converted


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mapped = {"auto": "auto", "required": "any", "none": "none"}.get(choice)
        if mapped is None:
            raise blocks.request_error(f"unknown tool_choice {choice!r}")
        return {"type": mapped}
    return {"type": "tool", "name": blocks.chosen_function(choice)}


def result_from(message: Any) -> ChatResult:
    """A buffered `Message` as a canonical result."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            tool_calls.append(blocks.tool_call(block.id, block.name, json.dumps(block.input)))
        elif block.type == "thinking":
            thinking.append(
                {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
            )
        elif block.type == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.data})
    return ChatResult(
        text="".join(texts),
        finish_reason=finish_reason(message.stop_reason),
        usage=usage_from(
            {field: getattr(message.usage, field, None) or 0 for field in INPUT_FIELDS},
            message.usage.output_tokens or 0,
        ),
        tool_calls=tool_calls or None,
        stop_sequence=getattr(message, "stop_sequence", None),
        thinking=thinking or None,
    )


INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
"""Anthropic reports cache reads and writes apart from `input_tokens`; the prompt is all three."""


def usage_from(inputs: Mapping[str, int], output_tokens: int) -> Usage:
    """Canonical usage from Anthropic's input counts (by `INPUT_FIELDS` name): the prompt is
    their sum, with the cache's reads and writes kept apart, as they are billed apart."""
    return Usage(
        prompt_tokens=sum(inputs.get(field) or 0 for field in INPUT_FIELDS),
        completion_tokens=output_tokens,
        cache_read_tokens=inputs.get("cache_read_input_tokens") or 0,
        cache_write_tokens=inputs.get("cache_creation_input_tokens") or 0,
    )
