"""Canonical request → SDK arguments, SDK objects → canonical results.

The canonical shape is OpenAI's, so this is mostly selecting what to send: known parameters
go as keyword arguments, unknown pass-through fields in `extra_body`.
"""

from __future__ import annotations

from typing import Any

from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage

_NOT_FORWARDED = {"model", "stream", "stream_options", "lockgate"}


def request_arguments(request: ChatRequest, model: str) -> dict[str, Any]:
    body = request.model_dump(exclude_none=True, exclude=_NOT_FORWARDED)
    extras = {k: body.pop(k) for k in list(request.model_extra or {}) if k in body}
    arguments: dict[str, Any] = {"model": model, **body}
    if extras:
        arguments["extra_body"] = extras
    return arguments


def usage_from(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
    )


def result_from(completion: Any) -> ChatResult:
    choice = completion.choices[0]
    message = choice.message
    tool_calls = (
        [call.model_dump(exclude_none=True) for call in message.tool_calls]
        if message.tool_calls
        else None
    )
    return ChatResult(
        text=message.content or "",
        finish_reason=choice.finish_reason or "stop",
        usage=usage_from(completion.usage),
        tool_calls=tool_calls,
    )


def chunk_from(event: Any) -> ChatChunk:
    """One SDK stream event; a usage-only event (empty choices) carries just the usage."""
    if not event.choices:
        return ChatChunk(usage=usage_from(event.usage) if event.usage else None)
    choice = event.choices[0]
    delta = choice.delta
    tool_calls = (
        [call.model_dump(exclude_none=True) for call in delta.tool_calls]
        if delta and delta.tool_calls
        else None
    )
    return ChatChunk(
        text=(delta.content or "") if delta else "",
        tool_calls=tool_calls,
        finish_reason=choice.finish_reason,
        usage=usage_from(event.usage) if event.usage else None,
    )
