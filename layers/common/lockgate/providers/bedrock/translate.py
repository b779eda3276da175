"""Canonical (OpenAI-shaped) requests → Bedrock Converse arguments, and Converse → canonical.

Converse is model-neutral but strict: roles alternate (consecutive same-role turns are merged),
the system prompt is a top-level list, tool results are `toolResult` blocks in a user turn,
images travel as raw bytes, and empty text blocks are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lockgate.chat import ChatMessage, ChatRequest, ChatResult, Usage
from lockgate.providers.errors import ErrorKind, ProviderError

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

MAX_TEMPERATURE = 1.0
"""Bedrock's models take 0..1 where OpenAI takes 0..2; clamping keeps the request servable."""

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def request_error(message: str) -> ProviderError:
    return ProviderError(message, kind=ErrorKind.REQUEST, status=400, code="invalid_request")


def unsupported(message: str) -> ProviderError:
    """A feature this target lacks: another target may have it, so fall back rather than fail."""
    return ProviderError(message, kind=ErrorKind.TARGET, code="unsupported_feature")


def finish_reason(stop_reason: str | None) -> str:
    return STOP_REASONS.get(stop_reason or "end_turn", "stop")


def converse_arguments(request: ChatRequest, model: str) -> dict[str, Any]:
    """Keyword arguments for `converse` and `converse_stream`."""
    if request.n is not None and request.n > 1:
        raise unsupported("Bedrock Converse cannot return more than one choice (n > 1)")
    system, messages = split_messages(request.messages)
    arguments: dict[str, Any] = {"modelId": model, "messages": messages}
    if system:
        arguments["system"] = system
    inference = inference_config(request)
    if inference:
        arguments["inferenceConfig"] = inference
    tools = tool_config(request)
    if tools:
        arguments["toolConfig"] = tools
    return arguments


def inference_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.output_limit is not None:
        config["maxTokens"] = request.output_limit
    if request.temperature is not None:
        config["temperature"] = min(request.temperature, MAX_TEMPERATURE)
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop_list:
        config["stopSequences"] = request.stop_list
    return config


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
    """Tool results answer the previous turn's tool uses, so they lead the user turn."""
    results = [b for b in blocks if "toolResult" in b]
    if not results:
        return blocks
    return results + [b for b in blocks if "toolResult" not in b]


def _turn(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "user":
        return "user", _user_blocks(message)
    if message.role == "assistant":
        return "assistant", _text_blocks(message) + _tool_use_blocks(message)
    if message.role == "tool":
        return "user", [_tool_result_block(message)]
    raise request_error("the legacy 'function' role is not supported; send tool messages instead")


def _text_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if isinstance(message.content, list):
        texts = [str(p.get("text", "")) for p in message.content if p.get("type") == "text"]
    else:
        texts = [message.content or ""]
    return [{"text": text} for text in texts if text]


def _user_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if not isinstance(message.content, list):
        return _text_blocks(message)
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            blocks.append(image_block(part))
        else:
            raise unsupported(f"content part type {kind!r} is not supported by Bedrock")
    return blocks


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    """A base64 data-URL image as raw bytes; Converse cannot fetch remote URLs."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:"):
        raise unsupported("Bedrock takes images only as base64 data URLs")
    header, _, data = url.partition(",")
    image_format = IMAGE_FORMATS.get(header.removeprefix("data:").split(";")[0])
    if image_format is None or ";base64" not in header:
        raise request_error("images must be base64 data URLs of png, jpeg, gif or webp")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise request_error("image data URL is not valid base64") from None
    return {"image": {"format": image_format, "source": {"bytes": raw}}}


def _tool_use_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = []
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        use = {
            "toolUseId": call.get("id") or "",
            "name": function.get("name") or "",
            "input": parse_arguments(function.get("arguments")),
        }
        blocks.append({"toolUse": use})
    return blocks


def parse_arguments(arguments: Any) -> dict[str, Any]:
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
    """A tool message; Converse refuses blank text, so an empty result is an empty JSON object."""
    if not message.tool_call_id:
        raise request_error("a tool message needs a tool_call_id")
    text = message.text()
    content: list[dict[str, Any]] = [{"text": text}] if text else [{"json": {}}]
    return {"toolResult": {"toolUseId": message.tool_call_id, "content": content}}


def tool_config(request: ChatRequest) -> dict[str, Any]:
    """`toolConfig`; `tool_choice="none"` sends the tools without a choice, as Converse has no
    way to forbid tool use while tools are declared."""
    if not request.tools:
        return {}
    config: dict[str, Any] = {"tools": [_tool(tool) for tool in request.tools]}
    choice = _tool_choice(request.tool_choice)
    if choice is not None:
        config["toolChoice"] = choice
    return config


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
        raise unsupported(f"tool type {tool.get('type')!r} is not supported by Bedrock")
    function = tool["function"]
    spec: dict[str, Any] = {
        "name": function.get("name") or "",
        "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None or choice == "none":
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "required"):
            raise request_error(f"unknown tool_choice {choice!r}")
        return {"auto": {}} if choice == "auto" else {"any": {}}
    name = (choice.get("function") or {}).get("name")
    if not name:
        raise request_error("tool_choice object needs function.name")
    return {"tool": {"name": name}}


def result_from(response: dict[str, Any]) -> ChatResult:
    """A `converse` response as a canonical result."""
    message = (response.get("output") or {}).get("message") or {}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = json.dumps(use.get("input") or {})
            tool_calls.append(tool_call(use.get("toolUseId", ""), use.get("name", ""), arguments))
    return ChatResult(
        text="".join(texts),
        finish_reason=finish_reason(response.get("stopReason")),
        usage=usage_from(response.get("usage")),
        tool_calls=tool_calls or None,
    )


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def usage_from(usage: dict[str, Any] | None) -> Usage:
    """Prompt tokens include cache reads and writes, which Converse reports apart."""
    if not usage:
        return Usage()
    prompt = sum(
        usage.get(field) or 0
        for field in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    )
    return Usage(prompt_tokens=prompt, completion_tokens=usage.get("outputTokens") or 0)
