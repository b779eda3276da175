"""OpenAI chat-completions responses and stream chunks, built from canonical results.

The request side needs no model of its own: the canonical `ChatRequest` is OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

from lockgate.api.errors import GatewayError, openai_error_body
from lockgate.api.sse import DONE, data_frame
from lockgate.chat import ChatChunk, ChatResult, Usage


def completion_body(
    result: ChatResult, *, completion_id: str, created: int, model: str
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text, "refusal": None}
    if result.thinking:
        # As DeepSeek and OpenAI-compatible servers show reasoning; the blocks, with their
        # signatures, let a client send an Anthropic model's thinking back on the next turn.
        message["reasoning_content"] = result.reasoning_text
        message["thinking_blocks"] = result.thinking
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
        if not result.text:
            message["content"] = None
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": result.usage.as_openai(),
        "system_fingerprint": None,
        **extension(result.sources),
    }


def extension(
    sources: list[dict[str, Any]] | None, continued: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `lockgate` response extension: the sources of a grounded answer, when there are, and
    how it was grounded (`rag.prompt.Sources.facts`); on a stream continued on another target
    after a failure, where it switched."""
    fields: dict[str, Any] = {}
    if sources is not None:
        fields["sources"] = sources
        fields.update(getattr(sources, "facts", {}))
    if continued is not None:
        fields["continued"] = continued
    return {"lockgate": fields} if fields else {}


class ChunkEncoder:
    """Turns canonical chunks into `chat.completion.chunk` SSE frames for one response."""

    def __init__(
        self, *, completion_id: str, created: int, model: str, include_usage: bool
    ) -> None:
        self._include_usage = include_usage
        self._head: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        self._role_sent = False

    def _frame(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        sources: list[dict[str, Any]] | None = None,
        continued: dict[str, Any] | None = None,
    ) -> bytes:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        frame = {
            **self._head,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
            **extension(sources, continued),
        }
        if self._include_usage:
            frame["usage"] = None
        return data_frame(frame)

    def start(self) -> bytes:
        """Nothing: OpenAI's first frame already carries content (with the role)."""
        return b""

    def chunk(self, chunk: ChatChunk) -> bytes:
        delta: dict[str, Any] = {}
        if chunk.thinking:
            delta["reasoning_content"] = chunk.thinking
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = chunk.tool_calls
        if not delta:
            return b""
        return self._frame(delta)

    def finish(
        self,
        finish_reason: str,
        usage: Usage,
        sources: list[dict[str, Any]] | None = None,
        continued: dict[str, Any] | None = None,
    ) -> bytes:
        frames = self._frame({}, finish_reason, sources, continued)
        if self._include_usage:
            frames += data_frame({**self._head, "choices": [], "usage": usage.as_openai()})
        return frames + DONE

    @staticmethod
    def error(error: GatewayError) -> bytes:
        """A mid-stream failure: an error frame and no [DONE], so no client mistakes the
        truncated answer for a complete one."""
        return data_frame(openai_error_body(error))
