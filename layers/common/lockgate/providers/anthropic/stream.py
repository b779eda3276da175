"""Messages API stream events → canonical chunks.

Events arrive as decoded JSON objects. Tool-use blocks become OpenAI-shaped tool-call deltas;
the translator holds the finish reason and usage back until `message_stop`, so a stream cut
after `message_delta` is still seen as a cut.
"""

from __future__ import annotations

import json
from typing import Any

from lockgate.chat import ChatChunk
from lockgate.providers.anthropic.translate import INPUT_FIELDS, finish_reason, usage_from
from lockgate.providers.blocks import ToolCallDeltas


class StreamTranslator:
    def __init__(self) -> None:
        self._tool_calls = ToolCallDeltas()
        self._input = dict.fromkeys(INPUT_FIELDS, 0)
        self._completion_tokens = 0
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self.finished = False

    def feed(self, event: dict[str, Any]) -> ChatChunk | None:
        """The chunk an event contributes, if any; unknown events are ignored."""
        match event.get("type"):
            case "message_start":
                self._count(event["message"].get("usage"))
            case "content_block_start":
                return self._on_block_start(event)
            case "content_block_delta":
                return self._on_block_delta(event)
            case "message_delta":
                self._on_message_delta(event)
            case "message_stop":
                return self._on_message_stop()
        return None

    def _count(self, usage: dict[str, Any] | None) -> None:
        """Usage counts are cumulative; fields left out keep their earlier value."""
        if not usage:
            return
        for field in INPUT_FIELDS:
            value = usage.get(field)
            if value is not None:
                self._input[field] = value
        self._completion_tokens = usage.get("output_tokens") or self._completion_tokens

    def _on_block_start(self, event: dict[str, Any]) -> ChatChunk | None:
        block = event["content_block"]
        kind = block["type"]
        if kind == "text":
            return ChatChunk(text=block["text"]) if block.get("text") else None
        if kind != "tool_use":
            return None
        initial = json.dumps(block["input"]) if block.get("input") else ""
        return self._tool_calls.start(event["index"], block["id"], block["name"], initial)

    def _on_block_delta(self, event: dict[str, Any]) -> ChatChunk | None:
        delta = event["delta"]
        kind = delta["type"]
        if kind == "text_delta":
            return ChatChunk(text=delta["text"]) if delta.get("text") else None
        if kind == "thinking_delta":
            return ChatChunk(thinking=delta["thinking"]) if delta.get("thinking") else None
        if kind == "signature_delta":
            return ChatChunk(signature=delta["signature"])
        if kind == "input_json_delta" and delta.get("partial_json"):
            return self._tool_calls.arguments(event["index"], delta["partial_json"])
        return None

    def _on_message_delta(self, event: dict[str, Any]) -> None:
        delta = event.get("delta") or {}
        if delta.get("stop_reason"):
            self._stop_reason = delta["stop_reason"]
        self._stop_sequence = delta.get("stop_sequence") or self._stop_sequence
        self._count(event.get("usage"))

    def _on_message_stop(self) -> ChatChunk:
        self.finished = True
        return ChatChunk(
            finish_reason=finish_reason(self._stop_reason),
            usage=usage_from(self._input, self._completion_tokens),
            stop_sequence=self._stop_sequence,
        )
