"""OpenAI's Responses API on the gateway side: request items, response objects, stream events.

A Responses request is translated to the canonical chat request once, on the way in, so it is
routed, cached, limited and accounted like any chat; the answer is translated back into output
items. `previous_response_id` is resolved against the `ResponseStore`: the stored record holds
the whole conversation so far in canonical form, so a follow-up costs one read. As in OpenAI's
API, the previous response's `instructions` are not carried over.

The stream encoder reproduces OpenAI's event sequence (created, in_progress, output item and
content part added, deltas, done events, completed) with increasing `sequence_number`s,
because the SDK's stream helpers accumulate the response from exactly these events.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lockgate.api.errors import GatewayError, bad_request
from lockgate.api.http import parse
from lockgate.api.openai import extension
from lockgate.api.sse import event_frame
from lockgate.chat import ChatChunk, ChatMessage, ChatRequest, ChatResult, LockgateOptions, Usage

PATH = "/v1/responses"

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Canonical finish reasons that end a response as `incomplete`, with OpenAI's reason."""


class ResponsesRequest(BaseModel):
    """A `POST /v1/responses` body; fields the gateway does not model pass through."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    lockgate: LockgateOptions | None = None


_NOT_FORWARDED = {
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "store",
    "stream",
    "max_output_tokens",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "metadata",
    "truncation",
    "include",
    "parallel_tool_calls",
    "lockgate",
}
"""Fields translated one by one (or meaningless to a chat upstream); the rest pass through."""


def parse_request(body: bytes) -> ResponsesRequest:
    return parse(ResponsesRequest, body)


def input_messages(request: ResponsesRequest) -> list[ChatMessage]:
    """The request's own turn (its `input`) as canonical messages, without `instructions`."""
    if isinstance(request.input, str):
        return [ChatMessage(role="user", content=request.input)]
    messages: list[ChatMessage] = []
    for index, item in enumerate(request.input):
        _add_item(messages, item, f"input.{index}")
    return messages


def _add_item(messages: list[ChatMessage], item: dict[str, Any], where: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        message = _message(item, where)
        last = messages[-1] if messages else None
        if (
            message.role == "assistant"
            and last is not None
            and last.role == "assistant"
            and not last.content
            and not last.tool_calls
        ):
            last.content = message.content
        else:
            messages.append(message)
    elif kind == "function_call":
        call = {
            "id": str(item.get("call_id") or item.get("id") or ""),
            "type": "function",
            "function": {
                "name": str(item.get("name") or ""),
                "arguments": str(item.get("arguments") or ""),
            },
        }
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant":
            last.tool_calls = [*(last.tool_calls or []), call]
        else:
            messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
    elif kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
        messages.append(
            ChatMessage(role="tool", tool_call_id=str(item.get("call_id") or ""), content=output)
        )
    elif kind == "reasoning":
        _add_reasoning(messages, item)
    else:
        raise bad_request(f"input item type {kind!r} is not supported", param=where)


def _add_reasoning(messages: list[ChatMessage], item: dict[str, Any]) -> None:
    """A reasoning item as the thinking block of the assistant turn it belongs to (the one
    that follows it); `encrypted_content` carries the signature of a gateway-made item."""
    text = "".join(str(c.get("text", "")) for c in item.get("content") or [])
    block = {"type": "thinking", "thinking": text, "signature": item.get("encrypted_content") or ""}
    last = messages[-1] if messages else None
    if last is None or last.role != "assistant" or last.content or last.tool_calls:
        last = ChatMessage(role="assistant", content=None)
        messages.append(last)
    extra = last.model_extra if last.model_extra is not None else {}
    extra.setdefault("thinking_blocks", []).append(block)


def _message(item: dict[str, Any], where: str) -> ChatMessage:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise bad_request(f"message role {role!r} is not supported", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str) or content is None:
        return ChatMessage(role=role, content=content or "")
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        parts.append(_content_part(part, f"{where}.content.{index}"))
    if all(p["type"] == "text" for p in parts):
        return ChatMessage(role=role, content="".join(p["text"] for p in parts))
    return ChatMessage(role=role, content=parts)


def _content_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise bad_request(
                "input_image needs an image_url (file ids are not supported)", param=where
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise bad_request(f"content part type {kind!r} is not supported", param=where)


def to_chat_request(request: ResponsesRequest, history: list[ChatMessage]) -> ChatRequest:
    """The canonical request for this turn: instructions, the stored history, the new input."""
    messages = list(history)
    if request.instructions:
        messages.insert(0, ChatMessage(role="system", content=request.instructions))
    messages.extend(input_messages(request))
    if not messages:
        raise bad_request("input is empty", param="input")
    fields: dict[str, Any] = request.model_dump(exclude_none=True, exclude=_NOT_FORWARDED)
    fields.update(model=request.model, messages=messages, stream=request.stream)
    if request.stream:
        fields["stream_options"] = {"include_usage": True}
    if request.max_output_tokens is not None:
        fields["max_tokens"] = request.max_output_tokens
    if request.tools:
        fields["tools"] = [_chat_tool(tool, i) for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        fields["tool_choice"] = _chat_tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = request.parallel_tool_calls
    if (response_format := _response_format(request.text)) is not None:
        fields["response_format"] = response_format
    if request.reasoning and request.reasoning.get("effort"):
        fields["reasoning_effort"] = request.reasoning["effort"]
    if request.lockgate is not None:
        fields["lockgate"] = request.lockgate
    try:
        chat = ChatRequest.model_validate(fields)
    except ValidationError as exc:
        detail = exc.errors()[0]
        raise bad_request(f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}") from None
    return chat.spoken_in("responses")


def _chat_tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise bad_request(
            f"tool type {tool.get('type')!r} is not supported: only function tools are",
            param=f"tools.{index}.type",
        )
    function: dict[str, Any] = {
        "name": tool.get("name") or "",
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    for key in ("description", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise bad_request(f"tool_choice {choice!r} is not supported", param="tool_choice")


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (text or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise bad_request(f"text.format type {fmt['type']!r} is not supported", param="text.format")


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, text: str, signature: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": item_id,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": "completed",
    }
    if signature:
        item["encrypted_content"] = signature
    return item


def output_items(result: ChatResult) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        reasoning_item(new_id("rs_"), str(b.get("thinking", "")), str(b.get("signature", "")))
        for b in result.thinking or []
        if b.get("type") == "thinking"
    ]
    if result.text or not result.tool_calls:
        items.append(message_item(new_id("msg_"), result.text))
    for call in result.tool_calls or []:
        function = call.get("function") or {}
        items.append(
            function_call_item(
                new_id("fc_"),
                str(call.get("id") or new_id("call_")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
            )
        )
    return items


class ResponseShell:
    """The parts of a response object fixed before the answer: id, echoes of the request."""

    def __init__(self, request: ResponsesRequest, model: str) -> None:
        self.id = new_id("resp_")
        self.created_at = int(time.time())
        self._request = request
        self._model = model

    def body(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None,
        finish_reason: str | None = None,
        sources: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        req = self._request
        reason = INCOMPLETE.get(finish_reason or "")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": "incomplete" if status == "completed" and reason else status,
            "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "model": self._model,
            "output": output,
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": req.previous_response_id,
            "reasoning": {"effort": (req.reasoning or {}).get("effort"), "summary": None},
            "store": req.store,
            "temperature": req.temperature,
            "text": req.text or {"format": {"type": "text"}},
            "tool_choice": req.tool_choice or "auto",
            "tools": req.tools or [],
            "top_p": req.top_p,
            "truncation": req.truncation or "disabled",
            "usage": usage_body(usage) if usage is not None else None,
            "user": req.user,
            "metadata": req.metadata or {},
            **extension(sources),
        }


def assistant_message(output: list[dict[str, Any]]) -> ChatMessage:
    """The answer as the canonical assistant turn that a follow-up continues from."""
    text = "".join(
        part.get("text", "")
        for item in output
        if item["type"] == "message"
        for part in item["content"]
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item["type"] == "function_call"
    ]
    thinking = [
        {
            "type": "thinking",
            "thinking": "".join(c["text"] for c in item.get("content") or []),
            "signature": item.get("encrypted_content") or "",
        }
        for item in output
        if item["type"] == "reasoning"
    ]
    fields: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        fields["tool_calls"] = calls
    if thinking:
        fields["thinking_blocks"] = thinking
    return ChatMessage.model_validate(fields)


class ResponsesStreamEncoder:
    """Canonical chunks → Responses API stream events for one response.

    The message item opens with the first text; each new tool-call index closes what is open
    and opens a `function_call` item. Items are closed in order, as the SDK expects.
    """

    def __init__(self, shell: ResponseShell) -> None:
        self._shell = shell
        self._sequence = 0
        self.output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.final: dict[str, Any] | None = None

    def _event(self, kind: str, **payload: Any) -> bytes:
        frame = event_frame(kind, {"type": kind, **payload, "sequence_number": self._sequence})
        self._sequence += 1
        return frame

    def start(self) -> bytes:
        shell = self._shell.body("in_progress", [], None)
        return self._event("response.created", response=shell) + self._event(
            "response.in_progress", response=shell
        )

    def chunk(self, chunk: ChatChunk) -> bytes:
        frames: list[bytes] = []
        if chunk.thinking or chunk.signature:
            frames.extend(self._reasoning_delta(chunk.thinking, chunk.signature))
        if chunk.text:
            frames.extend(self._text_delta(chunk.text))
        for call in chunk.tool_calls or []:
            frames.extend(self._tool_delta(call))
        return b"".join(frames)

    def _text_delta(self, text: str) -> list[bytes]:
        frames: list[bytes] = []
        if self._open is None or self._open["type"] != "message":
            frames.extend(self._close())
            item = message_item(new_id("msg_"), "", status="in_progress")
            frames.extend(self._open_item(item))
            part = {"type": "output_text", "text": "", "annotations": []}
            frames.append(self._part_event("response.content_part.added", part=part))
        self._text.append(text)
        frames.append(self._part_event("response.output_text.delta", delta=text, logprobs=[]))
        return frames

    def _reasoning_delta(self, thinking: str, signature: str) -> list[bytes]:
        frames: list[bytes] = []
        if self._open is None or self._open["type"] != "reasoning":
            frames.extend(self._close())
            item = reasoning_item(new_id("rs_"), "")
            item["status"] = "in_progress"
            frames.extend(self._open_item(item))
        if thinking:
            self._text.append(thinking)
            frames.append(self._part_event("response.reasoning_text.delta", delta=thinking))
        if signature:
            assert self._open is not None
            self._open["encrypted_content"] = signature
        return frames

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        function = call.get("function") or {}
        index = int(call.get("index", len(self._calls)))
        item = self._calls.get(index)
        if item is None:
            frames.extend(self._close())
            item = function_call_item(
                new_id("fc_"),
                str(call.get("id") or new_id("call_")),
                str(function.get("name") or ""),
                "",
                status="in_progress",
            )
            self._calls[index] = item
            frames.extend(self._open_item(item))
        arguments = function.get("arguments")
        if arguments and item is self._open:
            item["arguments"] += arguments
            frames.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    delta=arguments,
                )
            )
        return frames

    def _open_item(self, item: dict[str, Any]) -> list[bytes]:
        self.output.append(item)
        self._open = item
        return [
            self._event(
                "response.output_item.added", output_index=len(self.output) - 1, item=dict(item)
            )
        ]

    def _part_event(self, kind: str, **payload: Any) -> bytes:
        assert self._open is not None
        return self._event(
            kind,
            item_id=self._open["id"],
            output_index=len(self.output) - 1,
            content_index=0,
            **payload,
        )

    def _close(self) -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        frames: list[bytes] = []
        index = self.output.index(item)
        if item["type"] == "reasoning":
            text = "".join(self._text)
            self._text = []
            item["content"] = [{"type": "reasoning_text", "text": text}]
            self._open = item
            frames.append(self._part_event("response.reasoning_text.done", text=text))
            self._open = None
        elif item["type"] == "message":
            text = "".join(self._text)
            self._text = []
            part = {"type": "output_text", "text": text, "annotations": []}
            item["content"] = [part]
            self._open = item  # for the part events' ids
            frames.append(self._part_event("response.output_text.done", text=text, logprobs=[]))
            frames.append(self._part_event("response.content_part.done", part=part))
            self._open = None
        else:
            frames.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        item["status"] = "completed"
        frames.append(self._event("response.output_item.done", output_index=index, item=item))
        return frames

    def finish(
        self,
        finish_reason: str,
        usage: Usage,
        sources: list[dict[str, Any]] | None = None,
        continued: dict[str, Any] | None = None,
    ) -> bytes:
        frames = self._close()
        if not self.output:
            self.output.append(message_item(new_id("msg_"), ""))
        body = self._shell.body("completed", self.output, usage, finish_reason, sources)
        self.final = body
        kind = "response.completed" if body["status"] == "completed" else "response.incomplete"
        frames.append(self._event(kind, response=body))
        return b"".join(frames)

    def error(self, error: GatewayError) -> bytes:
        """A mid-stream failure, as OpenAI reports one: an `error` event, then
        `response.failed` with the error on the response, and no `response.completed`."""
        code = error.code or "server_error"
        frame = self._event("error", code=code, message=error.message, param=error.param)
        body = self._shell.body("failed", self.output, None)
        # A response's error code is one of OpenAI's few; the event above has the precise one.
        kind = "rate_limit_exceeded" if error.status == 429 else "server_error"
        body["error"] = {"code": kind, "message": error.message}
        return frame + self._event("response.failed", response=body)
