"""Canonical (OpenAI-shaped) messages → alternating turns of content blocks, and back.

Anthropic's Messages API and Bedrock's Converse take a conversation the same way: the system
prompt is a top-level list of text blocks, roles alternate (so consecutive same-role turns are
merged), tool results are blocks inside a user turn and lead it, tool calls are blocks with
parsed (not string) input, and empty text blocks are refused. Only the blocks' shapes differ,
so each provider passes its own `BlockBuilders`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lockgate.chat import ChatChunk, ChatMessage, ChatRequest
from lockgate.providers.errors import ErrorKind, ProviderError

Block = dict[str, Any]


def request_error(message: str) -> ProviderError:
    return ProviderError(message, kind=ErrorKind.REQUEST, status=400, code="invalid_request")


def unsupported(message: str) -> ProviderError:
    """A feature this target lacks: another target may have it, so fall back rather than fail."""
    return ProviderError(message, kind=ErrorKind.TARGET, code="unsupported_feature")


def finish_reason(stop_reasons: Mapping[str, str], stop_reason: str | None) -> str:
    return stop_reasons.get(stop_reason or "end_turn", "stop")


def single_choice(request: ChatRequest, target: str) -> None:
    if request.n is not None and request.n > 1:
        raise unsupported(f"{target} cannot return more than one choice (n > 1)")


def sampling(request: ChatRequest, *, top_p: str, max_temperature: float) -> dict[str, Any]:
    """Temperature, clamped to the target's range, and `top_p` under the target's name for it.

    OpenAI accepts temperatures up to 2; clamping keeps such a request servable instead of
    turning it into a 400 that no fallback could fix."""
    parameters: dict[str, Any] = {}
    if request.temperature is not None:
        parameters["temperature"] = min(request.temperature, max_temperature)
    if request.top_p is not None:
        parameters[top_p] = request.top_p
    return parameters


@dataclass(frozen=True)
class BlockBuilders:
    """One provider's block shapes; `target` names it in error messages."""

    target: str
    text: Callable[[str], Block]
    image: Callable[[dict[str, Any]], Block]
    """From an OpenAI `image_url` content part."""
    tool_use: Callable[[str, str, dict[str, Any]], Block]
    """From a tool call's id, function name and parsed arguments."""
    tool_result: Callable[[str, str], Block]
    """From a tool message's `tool_call_id` and text."""
    is_tool_result: Callable[[Block], bool]


def split_messages(
    messages: list[ChatMessage], builders: BlockBuilders
) -> tuple[list[Block], list[Block]]:
    """System text blocks, and alternating user/assistant turns with merged content blocks."""
    system: list[Block] = []
    turns: list[Block] = []
    for message in messages:
        if message.role in ("system", "developer"):
            system.extend(_text_blocks(message, builders))
            continue
        role, blocks = _turn(message, builders)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        turn["content"] = _tool_results_first(turn["content"], builders)
    return system, turns


def _tool_results_first(blocks: list[Block], builders: BlockBuilders) -> list[Block]:
    """Tool results answer the previous turn's tool uses, so they lead the user turn."""
    results = [b for b in blocks if builders.is_tool_result(b)]
    if not results:
        return blocks
    return results + [b for b in blocks if not builders.is_tool_result(b)]


def _turn(message: ChatMessage, builders: BlockBuilders) -> tuple[str, list[Block]]:
    if message.role == "user":
        return "user", _user_blocks(message, builders)
    if message.role == "assistant":
        return "assistant", _text_blocks(message, builders) + _tool_use_blocks(message, builders)
    if message.role == "tool":
        return "user", [_tool_result_block(message, builders)]
    raise request_error("the legacy 'function' role is not supported; send tool messages instead")


def _text_blocks(message: ChatMessage, builders: BlockBuilders) -> list[Block]:
    """Text blocks; empty text blocks are refused upstream, so they are left out."""
    if isinstance(message.content, list):
        texts = [str(p.get("text", "")) for p in message.content if p.get("type") == "text"]
    else:
        texts = [message.content or ""]
    return [builders.text(text) for text in texts if text]


def _user_blocks(message: ChatMessage, builders: BlockBuilders) -> list[Block]:
    if not isinstance(message.content, list):
        return _text_blocks(message, builders)
    blocks: list[Block] = []
    for part in message.content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append(builders.text(str(part["text"])))
        elif kind == "image_url":
            blocks.append(builders.image(part))
        else:
            raise unsupported(f"content part type {kind!r} is not supported by {builders.target}")
    return blocks


def _tool_use_blocks(message: ChatMessage, builders: BlockBuilders) -> list[Block]:
    blocks = []
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        arguments = parse_arguments(function.get("arguments"))
        blocks.append(
            builders.tool_use(call.get("id") or "", function.get("name") or "", arguments)
        )
    return blocks


def _tool_result_block(message: ChatMessage, builders: BlockBuilders) -> Block:
    if not message.tool_call_id:
        raise request_error("a tool message needs a tool_call_id")
    return builders.tool_result(message.tool_call_id, message.text())


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (a JSON string in OpenAI's shape) as the object a block carries."""
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


def image_url(part: dict[str, Any]) -> Any:
    """The URL of an OpenAI `image_url` part, given as an object or as the bare URL."""
    image = part.get("image_url")
    return image.get("url") if isinstance(image, dict) else image


def function_of(tool: dict[str, Any], target: str) -> dict[str, Any]:
    """A declared tool's `function`; tools of any other type are a feature the target lacks."""
    if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
        raise unsupported(f"tool type {tool.get('type')!r} is not supported by {target}")
    function: dict[str, Any] = tool["function"]
    return function


def chosen_function(choice: dict[str, Any]) -> Any:
    """The name of the function a `tool_choice` object names."""
    name = (choice.get("function") or {}).get("name")
    if not name:
        raise request_error("tool_choice object needs function.name")
    return name


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class ToolCallDeltas:
    """Streamed tool-use blocks as OpenAI tool-call deltas.

    Blocks are numbered by their position in the message; OpenAI-shaped tool-call deltas are
    numbered among tool calls only. This keeps that mapping.
    """

    def __init__(self) -> None:
        self._index: dict[int, int] = {}

    def start(self, block: int, call_id: str, name: str, arguments: str = "") -> ChatChunk:
        index = len(self._index)
        self._index[block] = index
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        return ChatChunk(tool_calls=[call])

    def arguments(self, block: int, arguments: str) -> ChatChunk | None:
        """More of a started call's arguments; a block never started as a tool use gives none."""
        index = self._index.get(block)
        if index is None:
            return None
        return ChatChunk(tool_calls=[{"index": index, "function": {"arguments": arguments}}])
