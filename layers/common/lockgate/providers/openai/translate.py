"""Canonical request → request body, response JSON → canonical results.

The canonical shape is OpenAI's, so a request needs only its target model and the gateway's own
fields removed; unknown pass-through fields travel as they came. Responses are read as plain
JSON rather than SDK models: the gateway re-encodes them anyway, and building the SDK's typed
objects was the largest share of the gateway's own time per request.
"""

from __future__ import annotations

from typing import Any

from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.providers import blocks

_NOT_FORWARDED = {"model", "stream", "stream_options", "lockgate"}
_FOREIGN = ("thinking", "top_k")
"""Canonical fields from another protocol's client that OpenAI would refuse."""
_FOREIGN_IN_MESSAGES = ("thinking_blocks", "is_error", "cache_control")


def request_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The request for an OpenAI-compatible server. A client that spoke OpenAI gets every field
    through untouched; one that spoke another protocol gets its extensions translated
    (`thinking` → `reasoning_effort`) or left out (`cache_control`: OpenAI caches prompts
    by itself; thinking blocks: OpenAI takes no reasoning back)."""
    body = request.model_dump(exclude_none=True, exclude=_NOT_FORWARDED)
    body["model"] = model
    if request.dialect != "openai":
        _to_openai_dialect(body)
    return body


def _to_openai_dialect(body: dict[str, Any]) -> None:
    thinking = body.pop("thinking", None)
    effort = blocks.reasoning_effort(thinking) if isinstance(thinking, dict) else None
    if effort is not None and "reasoning_effort" not in body:
        body["reasoning_effort"] = effort
    for name in _FOREIGN:
        body.pop(name, None)
    for tool in body.get("tools") or []:
        if tool.get("type") != "function":
            raise blocks.unsupported(f"OpenAI cannot take {tool.get('type')!r} tools")
        tool.pop("cache_control", None)
    body["messages"] = _openai_messages(body["messages"])


def _openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without foreign markers. OpenAI tool messages hold text only, so images in a
    tool result follow the tool messages in a user message of their own."""
    out: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for message in messages:
        if images and message.get("role") != "tool":
            out.append({"role": "user", "content": images})
            images = []
        for name in _FOREIGN_IN_MESSAGES:
            message.pop(name, None)
        content = message.get("content")
        if isinstance(content, list):
            parts = [_openai_part(part) for part in content]
            if message.get("role") == "tool":
                images.extend(p for p in parts if p["type"] == "image_url")
                parts = [p for p in parts if p["type"] == "text"]
            message["content"] = parts
        out.append(message)
    if images:
        out.append({"role": "user", "content": images})
    return out


def _openai_part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == blocks.NATIVE_PART:
        kind = (part.get("block") or {}).get("type")
        raise blocks.unsupported(f"OpenAI cannot take Anthropic {kind!r} blocks")
    part.pop("cache_control", None)
    return part


def usage_from(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cache_read_tokens=int(details.get("cached_tokens") or 0),
        cache_write_tokens=int(details.get("cache_write_tokens") or 0),
    )


def result_from(completion: dict[str, Any]) -> ChatResult:
    """Raises KeyError/TypeError/IndexError on a body that is not a chat completion."""
    choice = completion["choices"][0]
    message = choice["message"]
    reasoning = message.get("reasoning_content")
    return ChatResult(
        text=message.get("content") or "",
        finish_reason=choice.get("finish_reason") or "stop",
        usage=usage_from(completion.get("usage")),
        tool_calls=message.get("tool_calls") or None,
        thinking=[{"type": "thinking", "thinking": reasoning, "signature": ""}]
        if reasoning
        else None,
    )


def chunk_from(event: dict[str, Any]) -> ChatChunk:
    """One stream event; a usage-only event (empty choices) carries just the usage."""
    usage = usage_from(event["usage"]) if event.get("usage") else None
    choices = event.get("choices")
    if not choices:
        return ChatChunk(usage=usage)
    choice = choices[0]
    delta = choice.get("delta") or {}
    return ChatChunk(
        text=delta.get("content") or "",
        tool_calls=delta.get("tool_calls") or None,
        finish_reason=choice.get("finish_reason"),
        usage=usage,
    )
