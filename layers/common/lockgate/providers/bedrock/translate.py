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

from lockgate.chat import ChatRequest, ChatResult, Usage
from lockgate.providers import blocks

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
"""Bedrock's models take 0..1 where OpenAI takes 0..2."""

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def finish_reason(stop_reason: str | None) -> str:
    return blocks.finish_reason(STOP_REASONS, stop_reason)


def converse_arguments(request: ChatRequest, model: str) -> dict[str, Any]:
    """Keyword arguments for `converse` and `converse_stream`."""
    blocks.single_choice(request, "Bedrock Converse")
    system, messages = blocks.split_messages(request.messages, BLOCKS)
    arguments: dict[str, Any] = {"modelId": model, "messages": messages}
    if system:
        arguments["system"] = system
    inference = inference_config(request)
    if inference:
        arguments["inferenceConfig"] = inference
    tools = tool_config(request)
    if tools:
        arguments["toolConfig"] = tools
    schema = blocks.json_schema(request)
    if schema is not None:
        structure = {"jsonSchema": {"schema": json.dumps(schema), "name": _schema_name(request)}}
        arguments["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": structure}}
    additional = model_fields(request)
    if additional:
        arguments["additionalModelRequestFields"] = additional
    return arguments


def _schema_name(request: ChatRequest) -> str:
    name = ((request.response_format or {}).get("json_schema") or {}).get("name")
    return str(name) if name else "answer"


def model_fields(request: ChatRequest) -> dict[str, Any]:
    """Model-specific request fields Converse has no place for (Claude's `thinking`,
    `top_k`), in the model's own names."""
    fields: dict[str, Any] = {}
    thinking = blocks.thinking_config(request)
    if thinking is not None:
        fields["thinking"] = thinking
    top_k = (request.model_extra or {}).get("top_k")
    if isinstance(top_k, int):
        fields["top_k"] = top_k
    beta = request.native_headers.get("anthropic-beta")
    if beta:  # Claude on Bedrock takes the Messages API's betas as a body field
        fields["anthropic_beta"] = [b.strip() for b in beta.split(",") if b.strip()]
    return fields


def inference_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.output_limit is not None:
        config["maxTokens"] = request.output_limit
    config.update(blocks.sampling(request, top_p="topP", max_temperature=MAX_TEMPERATURE))
    if request.stop_list:
        config["stopSequences"] = request.stop_list
    return config


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    """A base64 data-URL image as raw bytes; Converse cannot fetch remote URLs."""
    url = blocks.image_url(part)
    if not isinstance(url, str) or not url.startswith("data:"):
        raise blocks.unsupported("Bedrock takes images only as base64 data URLs")
    header, _, data = url.partition(",")
    image_format = IMAGE_FORMATS.get(header.removeprefix("data:").split(";")[0])
    if image_format is None or ";base64" not in header:
        raise blocks.request_error("images must be base64 data URLs of png, jpeg, gif or webp")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise blocks.request_error("image data URL is not valid base64") from None
    return {"image": {"format": image_format, "source": {"bytes": raw}}}


def _tool_result_block(
    call_id: str, content: list[dict[str, Any]], is_error: bool
) -> dict[str, Any]:
    """Converse refuses blank text, so an empty result is an empty JSON object."""
    result: dict[str, Any] = {"toolUseId": call_id, "content": content or [{"json": {}}]}
    if is_error:
        result["status"] = "error"
    return {"toolResult": result}


def cache_point(control: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's `cache_control` as a Converse cache point, keeping its TTL."""
    point: dict[str, Any] = {"type": "default"}
    if control.get("ttl") in ("5m", "1h"):
        point["ttl"] = control["ttl"]
    return {"cachePoint": point}


def reasoning_block(block: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic-shaped thinking block as Converse reasoning content."""
    if block.get("type") == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": base64.b64decode(block.get("data", ""))}}
    text: dict[str, Any] = {"text": str(block.get("thinking", ""))}
    if block.get("signature"):
        text["signature"] = block["signature"]
    return {"reasoningContent": {"reasoningText": text}}


def _native(block: dict[str, Any]) -> dict[str, Any]:
    raise blocks.unsupported(f"Bedrock cannot take Anthropic {block.get('type')!r} blocks")


BLOCKS = blocks.BlockBuilders(
    target="Bedrock",
    text=lambda text: {"text": text},
    image=image_block,
    tool_use=lambda call_id, name, arguments: {
        "toolUse": {"toolUseId": call_id, "name": name, "input": arguments}
    },
    tool_result=_tool_result_block,
    is_tool_result=lambda block: "toolResult" in block,
    cache=lambda content, control: content.append(cache_point(control)),
    is_marker=lambda block: "cachePoint" in block,
    thinking=reasoning_block,
    native=_native,
)


def tool_config(request: ChatRequest) -> dict[str, Any]:
    """`toolConfig`; `tool_choice="none"` sends the tools without a choice, as Converse has no
    way to forbid tool use while tools are declared."""
    if not request.tools:
        return {}
    config: dict[str, Any] = {"tools": []}
    for tool in request.tools:
        config["tools"].append(_tool(tool))
        if isinstance(tool.get("cache_control"), dict):
            config["tools"].append(cache_point(tool["cache_control"]))
    choice = _tool_choice(request.tool_choice)
    if choice is not None:
        config["toolChoice"] = choice
    return config


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = blocks.function_of(tool, "Bedrock")
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
            raise blocks.request_error(f"unknown tool_choice {choice!r}")
        return {"auto": {}} if choice == "auto" else {"any": {}}
    return {"tool": {"name": blocks.chosen_function(choice)}}


def result_from(response: dict[str, Any]) -> ChatResult:
    """A `converse` response as a canonical result."""
    message = (response.get("output") or {}).get("message") or {}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = json.dumps(use.get("input") or {})
            tool_calls.append(
                blocks.tool_call(use.get("toolUseId", ""), use.get("name", ""), arguments)
            )
        elif "reasoningContent" in block:
            thinking.append(thinking_block(block["reasoningContent"]))
    return ChatResult(
        text="".join(texts),
        finish_reason=finish_reason(response.get("stopReason")),
        usage=usage_from(response.get("usage")),
        tool_calls=tool_calls or None,
        thinking=thinking or None,
    )


def thinking_block(reasoning: dict[str, Any]) -> dict[str, Any]:
    """Converse reasoning content as an Anthropic-shaped thinking block."""
    if "redactedContent" in reasoning:
        data = base64.b64encode(bytes(reasoning["redactedContent"])).decode("ascii")
        return {"type": "redacted_thinking", "data": data}
    text = reasoning.get("reasoningText") or {}
    return {
        "type": "thinking",
        "thinking": text.get("text", ""),
        "signature": text.get("signature", ""),
    }


def usage_from(usage: dict[str, Any] | None) -> Usage:
    """Prompt tokens include cache reads and writes, which Converse reports apart."""
    if not usage:
        return Usage()
    read = usage.get("cacheReadInputTokens") or 0
    write = usage.get("cacheWriteInputTokens") or 0
    return Usage(
        prompt_tokens=(usage.get("inputTokens") or 0) + read + write,
        completion_tokens=usage.get("outputTokens") or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
