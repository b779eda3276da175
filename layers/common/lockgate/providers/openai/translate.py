"""Canonical request → request body, response JSON → canonical results.

The canonical shape is OpenAI's, so a request needs only its target model and the gateway's own
fields removed; unknown pass-through fields travel as they came. Responses are read as plain
JSON rather than SDK models: the gateway re-encodes them anyway, and building the SDK's typed
objects was the largest share of the gateway's own time per request.
"""

from __future__ import annotations

from typing import Any

from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage

_NOT_FORWARDED = {"model", "stream", "stream_options", "lockgate"}


def request_body(request: ChatRequest, model: str) -> dict[str, Any]:
    body = request.model_dump(exclude_none=True, exclude=_NOT_FORWARDED)
    body["model"] = model
    return body


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
    return ChatResult(
        text=message.get("content") or "",
        finish_reason=choice.get("finish_reason") or "stop",
        usage=usage_from(completion.get("usage")),
        tool_calls=message.get("tool_calls") or None,
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
