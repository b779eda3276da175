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
    tool_result: Callable[[str, list[Block], bool], Block]
    """From a tool message's `tool_call_id`, its content as blocks, and whether it is an error."""
    is_tool_result: Callable[[Block], bool]
    cache: Callable[[list[Block], dict[str, Any]], None]
    """Applies a `cache_control` marker to the blocks just built (the last one ends the
    cached prefix): Anthropic marks the block, Converse appends a `cachePoint`."""
    is_marker: Callable[[Block], bool]
    """A block that belongs to the one before it (a Converse `cachePoint`)."""
    thinking: Callable[[dict[str, Any]], Block]
    """From an Anthropic-shaped thinking block of an assistant turn."""
    native: Callable[[dict[str, Any]], Block]
    """From an Anthropic block the client sent that has no canonical form."""


NATIVE_PART = "x-anthropic"
"""A canonical content part carrying an Anthropic block as it came (`{"block": ...}`)."""


def split_messages(
    messages: list[ChatMessage], builders: BlockBuilders
) -> tuple[list[Block], list[Block]]:
    """System text blocks, and alternating user/assistant turns with merged content blocks."""
    system: list[Block] = []
    turns: list[Block] = []
    for message in messages:
        if message.role in ("system", "developer"):
            system.extend(_marked(message, _text_blocks(message, builders), builders))
            continue
        role, blocks = _turn(message, builders)
        blocks = _marked(message, blocks, builders)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        turn["content"] = _tool_results_first(turn["content"], builders)
    return system, turns


def _marked(message: ChatMessage, blocks: list[Block], builders: BlockBuilders) -> list[Block]:
    """A message-level `cache_control` (as some OpenAI-dialect clients send it) marks the
    message's last block."""
    control = (message.model_extra or {}).get("cache_control")
    if isinstance(control, dict) and blocks:
        builders.cache(blocks, control)
    return blocks


def _tool_results_first(blocks: list[Block], builders: BlockBuilders) -> list[Block]:
    """Tool results answer the previous turn's tool uses, so they lead the user turn; a
    marker block stays behind the block it follows."""
    groups: list[list[Block]] = []
    for block in blocks:
        if groups and builders.is_marker(block):
            groups[-1].append(block)
        else:
            groups.append([block])
    results = [g for g in groups if builders.is_tool_result(g[0])]
    if not results:
        return blocks
    others = [g for g in groups if not builders.is_tool_result(g[0])]
    return [block for group in results + others for block in group]


def _turn(message: ChatMessage, builders: BlockBuilders) -> tuple[str, list[Block]]:
    if message.role == "user":
        return "user", _part_blocks(message, builders)
    if message.role == "assistant":
        thinking = [builders.thinking(b) for b in _thinking_blocks(message)]
        return "assistant", thinking + _part_blocks(message, builders) + _tool_use_blocks(
            message, builders
        )
    if message.role == "tool":
        return "user", _tool_result_blocks(message, builders)
    raise request_error("the legacy 'function' role is not supported; send tool messages instead")


def _thinking_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = (message.model_extra or {}).get("thinking_blocks")
    return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []


def _text_blocks(message: ChatMessage, builders: BlockBuilders) -> list[Block]:
    """Text blocks, each keeping its `cache_control`; empty text blocks are refused upstream,
    so they are left out."""
    if not isinstance(message.content, list):
        return [builders.text(message.content)] if message.content else []
    blocks: list[Block] = []
    for part in message.content:
        if part.get("type") == "text" and part.get("text"):
            blocks.append(builders.text(str(part["text"])))
            _cache_part(part, blocks, builders)
    return blocks


def _cache_part(part: dict[str, Any], blocks: list[Block], builders: BlockBuilders) -> None:
    control = part.get("cache_control")
    if isinstance(control, dict):
        builders.cache(blocks, control)


def _part_blocks(
    message: ChatMessage, builders: BlockBuilders, *, mark: bool = True
) -> list[Block]:
    if not isinstance(message.content, list):
        return _text_blocks(message, builders)
    blocks: list[Block] = []
    for part in message.content:
        kind = part.get("type")
        if kind in ("text", "refusal"):  # an assistant's refusal is what it said
            text = part.get(kind)
            if not text:
                continue
            blocks.append(builders.text(str(text)))
        elif kind == "image_url":
            blocks.append(builders.image(part))
        elif kind == NATIVE_PART:
            blocks.append(builders.native(part["block"]))
        else:
            raise unsupported(f"content part type {kind!r} is not supported by {builders.target}")
        if mark:
            _cache_part(part, blocks, builders)
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


def _tool_result_blocks(message: ChatMessage, builders: BlockBuilders) -> list[Block]:
    """The result block; a `cache_control` on any of its parts marks the result itself, as
    Anthropic allows markers on a `tool_result` but not inside its content."""
    if not message.tool_call_id:
        raise request_error("a tool message needs a tool_call_id")
    content = _part_blocks(message, builders, mark=False)
    is_error = (message.model_extra or {}).get("is_error") is True
    blocks = [builders.tool_result(message.tool_call_id, content, is_error)]
    parts = message.content if isinstance(message.content, list) else []
    for part in parts:
        _cache_part(part, blocks, builders)
    return blocks


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


EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
"""Thinking budgets for OpenAI's `reasoning_effort` levels, on targets that take a budget."""


def thinking_config(request: ChatRequest) -> dict[str, Any] | None:
    """Anthropic-shaped thinking settings: the client's own `thinking`, or a budget for its
    OpenAI `reasoning_effort`; None when the request asks for neither."""
    extras = request.model_extra or {}
    thinking = extras.get("thinking")
    if isinstance(thinking, dict):
        return thinking
    budget = EFFORT_BUDGETS.get(str(extras.get("reasoning_effort")))
    return None if budget is None else {"type": "enabled", "budget_tokens": budget}


def reasoning_effort(thinking: dict[str, Any]) -> str | None:
    """The OpenAI effort level nearest to an Anthropic thinking budget (None: disabled)."""
    if thinking.get("type") == "disabled":
        return None
    budget = int(thinking.get("budget_tokens") or EFFORT_BUDGETS["medium"])
    return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


def json_schema(request: ChatRequest) -> dict[str, Any] | None:
    """The JSON schema the answer must follow: `json_schema` mode's, or any object for
    `json_object` mode; None for free text."""
    fmt = request.response_format or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None
