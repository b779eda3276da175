"""The translation conformance matrix: every ingress protocol by every upstream, per feature.

Ingress: the official SDKs as callers — `openai` (chat completions and the Responses API) and
`anthropic` (messages) — against the gateway on uvicorn. Upstream, what the target received is
read back and checked field by field:

- OpenAI and Anthropic: the mock upstream (aiohttp on loopback, speaking both wires), which
  records every request body (`GET /_mock/requests`).
- Bedrock Converse: a real boto3 `bedrock-runtime` client with `botocore.stub.Stubber`; botocore
  validates the parameters against the Converse service model before the stub answers, and a
  `provide-client-params` hook records them. Emulated: the stub's answers are ours.
- local: the llama.cpp model object replaced by a recorder of the arguments given to
  `create_chat_completion` (the real model runs in `test_local_model.py`).

A cell either passes the feature on (✓), degrades in the documented way, or is refused with a
400 that says why; the README's matrix is this file's summary.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.stub import Stubber
from lockgate.policy import BedrockProviderConfig, LocalProviderConfig, Timeouts
from lockgate.providers.bedrock import BedrockProvider
from lockgate.providers.local.provider import LocalProvider

from tests.support.servers import RunningGateway, gateway, mock_policy, upstream_requests

INGRESS = ("chat", "messages", "responses")
UPSTREAMS = ("openai", "anthropic", "bedrock", "local")
ALIAS = {"openai": "oa", "anthropic": "an", "bedrock": "br", "local": "lo"}
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452")).decode()
IMAGE_URL = "https://example.com/cat.png"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather",
    "schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SIGNATURE = "sig-EqQBCkYIAxgCIkD"


class Recorder:
    """What the Bedrock client and the local model were asked, newest last."""

    def __init__(self) -> None:
        self.bedrock: list[dict[str, Any]] = []
        self.local: list[dict[str, Any]] = []
        self.bedrock_answer: dict[str, Any] = {}
        self.local_finish = "stop"


class RecordingLlama:
    """Stands in for `llama_cpp.Llama`: records the arguments, streams a two-word answer."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def tokenize(self, text: bytes, add_bos: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def create_chat_completion(self, **arguments: Any) -> Iterator[dict[str, Any]]:
        self._recorder.local.append(arguments)
        yield {"choices": [{"delta": {"content": "local answer"}, "finish_reason": None}]}
        yield {"choices": [{"delta": {}, "finish_reason": self._recorder.local_finish}]}


def bedrock_answer(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": [{"text": "bedrock answer"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 2, "totalTokens": 12},
        "metrics": {"latencyMs": 5},
    }
    answer.update(overrides)
    return answer


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def gw(
    upstream: str, tmp_path_factory: pytest.TempPathFactory, recorder: Recorder
) -> Iterator[RunningGateway]:
    policy = mock_policy(
        upstream,
        {
            "oa": {"targets": ["mock/gpt-conf"]},
            "an": {"targets": ["mockant/claude-conf"]},
            "br": {"targets": ["bedrock/anthropic.claude-conf"]},
            "lo": {"targets": ["local/smollm2"]},
        },
    )
    policy["providers"]["bedrock"] = {"kind": "bedrock", "region": "us-east-1"}
    policy["providers"]["local"] = {"kind": "local"}
    data_dir = tmp_path_factory.mktemp("conformance")
    with gateway(policy, data_dir, warm_local_model=False) as running:
        providers = running.app.state.container.providers
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.meta.events.register(
            "provide-client-params.bedrock-runtime.Converse",
            lambda params, **_: recorder.bedrock.append(
                json.loads(json.dumps(params, default=repr))
            ),
        )
        stubber = Stubber(client)

        def answer(params: Any, **_: Any) -> None:
            stubber.add_response("converse", recorder.bedrock_answer or bedrock_answer())

        client.meta.events.register("provide-client-params.bedrock-runtime.Converse", answer)
        stubber.activate()
        providers["bedrock"] = BedrockProvider(
            "bedrock", BedrockProviderConfig(kind="bedrock"), Timeouts(), client=client
        )
        local = LocalProvider("local", LocalProviderConfig(kind="local"), Timeouts())
        local._llama = RecordingLlama(recorder)  # the model object; see the module docstring
        providers["local"] = local
        yield running
        stubber.deactivate()


@dataclass
class Call:
    """One request in one protocol, and what came back."""

    ingress: str
    upstream: str
    marker: str
    body: Any = None
    error: Exception | None = None
    sent: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def call(
    gw: RunningGateway, upstream: str, recorder: Recorder, request: pytest.FixtureRequest
) -> Callable[..., Call]:
    oai = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    ant = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)

    def run(ingress: str, target: str, build: Callable[[str, str], dict[str, Any]]) -> Call:
        marker = f"m{abs(hash((request.node.nodeid, ingress, target))) % 10**8}"
        kwargs = build(ingress, marker)
        kwargs["model"] = ALIAS[target]
        result = Call(ingress, target, marker)
        before = (len(recorder.bedrock), len(recorder.local))
        try:
            if ingress == "chat":
                result.body = oai.chat.completions.create(**kwargs)
            elif ingress == "messages":
                result.body = ant.messages.create(**kwargs)
            else:
                result.body = oai.responses.create(**kwargs)
        except (openai.APIStatusError, anthropic.APIStatusError) as exc:
            result.error = exc
        if target == "bedrock" and len(recorder.bedrock) > before[0]:
            result.sent = recorder.bedrock[-1]
        elif target == "local" and len(recorder.local) > before[1]:
            result.sent = recorder.local[-1]
        elif target in ("openai", "anthropic"):
            found = upstream_requests(upstream, marker)
            result.sent = found[-1]["body"] if found else {}
        return result

    return run


def user_text(ingress: str, text: str, *, system: str | None = None) -> dict[str, Any]:
    if ingress == "chat":
        messages = [{"role": "system", "content": system}] if system else []
        return {"messages": [*messages, {"role": "user", "content": text}]}
    if ingress == "messages":
        return {"max_tokens": 64, "messages": [{"role": "user", "content": text}]} | (
            {"system": system} if system else {}
        )
    return {"input": text} | ({"instructions": system} if system else {})


def refused(result: Call, words: str) -> None:
    assert result.error is not None, f"{result.ingress} → {result.upstream} was not refused"
    assert getattr(result.error, "status_code", None) == 400
    assert words in str(result.error)


# -- text and system prompts --------------------------------------------------------------


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text_and_system_prompt(call: Callable[..., Call], ingress: str, target: str) -> None:
    result = call(ingress, target, lambda i, m: user_text(i, f"hello {m}", system=f"Be terse {m}."))
    assert result.error is None
    sent, marker = result.sent, result.marker
    if target in ("openai", "local"):
        assert sent["messages"][0] == {"role": "system", "content": f"Be terse {marker}."}
        assert sent["messages"][-1] == {"role": "user", "content": f"hello {marker}"}
    elif target == "anthropic":
        assert sent["system"] == [{"type": "text", "text": f"Be terse {marker}."}]
        assert sent["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": f"hello {marker}"}]}
        ]
    else:
        assert sent["system"] == [{"text": f"Be terse {marker}."}]
        assert sent["messages"] == [{"role": "user", "content": [{"text": f"hello {marker}"}]}]


# -- images -------------------------------------------------------------------------------


def image_request(kind: str) -> Callable[[str, str], dict[str, Any]]:
    url = f"data:image/png;base64,{PNG}" if kind == "base64" else IMAGE_URL

    def build(ingress: str, marker: str) -> dict[str, Any]:
        if ingress == "chat":
            parts = [
                {"type": "text", "text": f"describe {marker}"},
                {"type": "image_url", "image_url": {"url": url}},
            ]
            return {"messages": [{"role": "user", "content": parts}]}
        if ingress == "messages":
            source = (
                {"type": "base64", "media_type": "image/png", "data": PNG}
                if kind == "base64"
                else {"type": "url", "url": IMAGE_URL}
            )
            parts = [
                {"type": "text", "text": f"describe {marker}"},
                {"type": "image", "source": source},
            ]
            return {"max_tokens": 64, "messages": [{"role": "user", "content": parts}]}
        parts = [
            {"type": "input_text", "text": f"describe {marker}"},
            {"type": "input_image", "image_url": url},
        ]
        return {"input": [{"role": "user", "content": parts}]}

    return build


@pytest.mark.parametrize("kind", ["base64", "url"])
@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_images(call: Callable[..., Call], ingress: str, target: str, kind: str) -> None:
    result = call(ingress, target, image_request(kind))
    if target == "local":
        refused(result, "text only")
        return
    if target == "bedrock" and kind == "url":
        refused(result, "base64")
        return
    assert result.error is None
    content = result.sent["messages"][-1]["content"]
    if target == "openai":
        assert content[1]["image_url"]["url"].endswith(PNG if kind == "base64" else "cat.png")
    elif target == "anthropic":
        source = content[1]["source"]
        assert source == (
            {"type": "base64", "media_type": "image/png", "data": PNG}
            if kind == "base64"
            else {"type": "url", "url": IMAGE_URL}
        )
    else:
        assert content[1]["image"]["format"] == "png"
        assert content[1]["image"]["source"]["bytes"] != ""


# -- tools: definitions, calls and results (parallel) --------------------------------------


def tool_definitions(ingress: str) -> list[dict[str, Any]]:
    if ingress == "chat":
        function = {
            "name": WEATHER["name"],
            "description": WEATHER["description"],
            "parameters": WEATHER["schema"],
        }
        return [{"type": "function", "function": function}]
    if ingress == "messages":
        return [
            {
                "name": WEATHER["name"],
                "description": WEATHER["description"],
                "input_schema": WEATHER["schema"],
            }
        ]
    return [
        {
            "type": "function",
            "name": WEATHER["name"],
            "description": WEATHER["description"],
            "parameters": WEATHER["schema"],
        }
    ]


def parallel_tool_round(ingress: str, marker: str) -> dict[str, Any]:
    """A conversation with two parallel calls answered, then a new question."""
    calls = [("call_a", "Paris"), ("call_b", "Oslo")]
    if ingress == "chat":
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": f"weather in two cities {marker}"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps({"city": c})},
                    }
                    for cid, c in calls
                ],
            },
            *(
                {"role": "tool", "tool_call_id": cid, "content": f"sunny in {c}"}
                for cid, c in calls
            ),
            {"role": "user", "content": "thanks"},
        ]
        return {"messages": messages, "tools": tool_definitions(ingress)}
    if ingress == "messages":
        return {
            "max_tokens": 64,
            "tools": tool_definitions(ingress),
            "messages": [
                {"role": "user", "content": f"weather in two cities {marker}"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": cid, "name": "get_weather", "input": {"city": c}}
                        for cid, c in calls
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        *(
                            {"type": "tool_result", "tool_use_id": cid, "content": f"sunny in {c}"}
                            for cid, c in calls
                        ),
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
        }
    return {
        "tools": tool_definitions(ingress),
        "input": [
            {"role": "user", "content": f"weather in two cities {marker}"},
            *(
                {
                    "type": "function_call",
                    "call_id": cid,
                    "name": "get_weather",
                    "arguments": json.dumps({"city": c}),
                }
                for cid, c in calls
            ),
            *(
                {"type": "function_call_output", "call_id": cid, "output": f"sunny in {c}"}
                for cid, c in calls
            ),
            {"role": "user", "content": "thanks"},
        ],
    }


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_definitions_calls_and_parallel_results(
    call: Callable[..., Call], ingress: str, target: str
) -> None:
    result = call(ingress, target, parallel_tool_round)
    if target == "local":
        refused(result, "does not support tools")
        return
    assert result.error is None
    sent = result.sent
    if target == "openai":
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["schema"]
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "tool", "tool", "user"]
        calls = sent["messages"][1]["tool_calls"]
        assert [(c["id"], json.loads(c["function"]["arguments"])) for c in calls] == [
            ("call_a", {"city": "Paris"}),
            ("call_b", {"city": "Oslo"}),
        ]
        assert [m["tool_call_id"] for m in sent["messages"][2:4]] == ["call_a", "call_b"]
    elif target == "anthropic":
        assert sent["tools"][0] == {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": WEATHER["schema"],
        }
        uses = sent["messages"][1]["content"]
        assert [(u["type"], u["id"], u["input"]) for u in uses] == [
            ("tool_use", "call_a", {"city": "Paris"}),
            ("tool_use", "call_b", {"city": "Oslo"}),
        ]
        answer = sent["messages"][2]["content"]
        assert [(b["type"], b.get("tool_use_id")) for b in answer] == [
            ("tool_result", "call_a"),
            ("tool_result", "call_b"),
            ("text", None),
        ]
    else:
        spec = sent["toolConfig"]["tools"][0]["toolSpec"]
        assert spec["name"] == "get_weather" and spec["inputSchema"]["json"] == WEATHER["schema"]
        uses = [b["toolUse"] for b in sent["messages"][1]["content"]]
        assert [(u["toolUseId"], u["input"]) for u in uses] == [
            ("call_a", {"city": "Paris"}),
            ("call_b", {"city": "Oslo"}),
        ]
        results = [b["toolResult"] for b in sent["messages"][2]["content"][:2]]
        assert [(r["toolUseId"], r["content"]) for r in results] == [
            ("call_a", [{"text": "sunny in Paris"}]),
            ("call_b", [{"text": "sunny in Oslo"}]),
        ]


@pytest.mark.parametrize("target", ["openai", "anthropic"])
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_call_answers(call: Callable[..., Call], ingress: str, target: str) -> None:
    """The upstream's tool call comes back in the client's protocol, with its stop reason."""

    def ask(i: str, m: str) -> dict[str, Any]:
        return user_text(i, f"what is the weather in Paris? {m}") | {"tools": tool_definitions(i)}

    result = call(ingress, target, ask)
    assert result.error is None
    body = result.body
    if ingress == "chat":
        assert body.choices[0].finish_reason == "tool_calls"
        assert body.choices[0].message.tool_calls[0].function.name == "get_weather"
    elif ingress == "messages":
        assert body.stop_reason == "tool_use"
        assert [b.type for b in body.content][-1] == "tool_use"
    else:
        assert body.output[-1].type == "function_call" and body.output[-1].name == "get_weather"


# -- JSON mode / schema -------------------------------------------------------------------


def json_schema_request(ingress: str, marker: str) -> dict[str, Any]:
    base = user_text(ingress, f"city as JSON {marker}")
    if ingress == "chat":
        fmt = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
        return base | {"response_format": fmt}
    if ingress == "messages":
        return base | {
            "extra_body": {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
        }
    return base | {"text": {"format": {"type": "json_schema", "name": "city", "schema": SCHEMA}}}


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_json_schema(call: Callable[..., Call], ingress: str, target: str) -> None:
    result = call(ingress, target, json_schema_request)
    assert result.error is None
    sent = result.sent
    if target == "openai":
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    elif target == "anthropic":
        assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    elif target == "bedrock":
        fmt = sent["outputConfig"]["textFormat"]
        assert fmt["type"] == "json_schema"
        assert json.loads(fmt["structure"]["jsonSchema"]["schema"]) == SCHEMA
    else:
        assert sent["response_format"] == {"type": "json_object", "schema": SCHEMA}


# -- stop sequences -----------------------------------------------------------------------


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_stop_sequences(call: Callable[..., Call], ingress: str, target: str) -> None:
    """The Responses API has no stop sequences, so that column is not applicable."""

    def build(i: str, m: str) -> dict[str, Any]:
        key = "stop" if i == "chat" else "stop_sequences"
        return user_text(i, f"count {m}") | {key: ["END", "\n\n"]}

    result = call(ingress, target, build)
    assert result.error is None
    sent = result.sent
    expected = ["END", "\n\n"]
    if target in ("openai", "local"):
        assert sent["stop"] == expected
    elif target == "anthropic":
        assert sent["stop_sequences"] == expected
    else:
        assert sent["inferenceConfig"]["stopSequences"] == expected


# -- prompt caching: cache_control ↔ cachePoint -------------------------------------------


def cached_request(ingress: str, marker: str, *, tools: bool = True) -> dict[str, Any]:
    control = {"type": "ephemeral", "ttl": "1h"}
    if ingress == "messages":
        tool = tool_definitions("messages")[0] | {"cache_control": {"type": "ephemeral"}}
        return {
            "max_tokens": 64,
            "system": [{"type": "text", "text": f"long manual {marker}", "cache_control": control}],
            "tools": [tool] if tools else [],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "context", "cache_control": control},
                        {"type": "text", "text": "question"},
                    ],
                }
            ],
        }
    parts = [
        {"type": "text", "text": f"long manual {marker}", "cache_control": control},
        {"type": "text", "text": "question"},
    ]
    return {"messages": [{"role": "user", "content": parts}]}


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_prompt_cache_markers(call: Callable[..., Call], ingress: str, target: str) -> None:
    """Anthropic's markers (and OpenAI-dialect clients' copies of them, as OpenCode sends)
    become Converse cache points with the same TTL; OpenAI caches on its own, so a marker
    from an Anthropic client is removed there (a strict server would refuse it), while an
    OpenAI client's own body passes untouched. The Responses API has no markers."""
    result = call(ingress, target, partial(cached_request, tools=target != "local"))
    assert result.error is None
    sent = result.sent
    if target == "anthropic":
        if ingress == "messages":
            assert sent["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
            assert sent["tools"][0]["cache_control"] == {"type": "ephemeral"}
        content = sent["messages"][0]["content"]
        assert content[0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
        assert "cache_control" not in content[1]
    elif target == "bedrock":
        if ingress == "messages":
            assert sent["system"][1] == {"cachePoint": {"type": "default", "ttl": "1h"}}
            assert sent["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default"}}
        content = sent["messages"][0]["content"]
        assert content[1] == {"cachePoint": {"type": "default", "ttl": "1h"}}
        assert "text" in content[2]
    elif target == "openai":
        text = json.dumps(sent)
        assert ("cache_control" in text) == (ingress == "chat")
    else:
        assert sent["messages"][-1]["content"].startswith(
            "context" if ingress == "messages" else "long"
        )


# -- reasoning / thinking -----------------------------------------------------------------


def thinking_request(ingress: str, marker: str) -> dict[str, Any]:
    """Reasoning asked for, with an earlier turn's signed thinking block in the history."""
    block = {"type": "thinking", "thinking": "Paris is in France.", "signature": SIGNATURE}
    if ingress == "messages":
        return {
            "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "capital of France?"},
                {"role": "assistant", "content": [block, {"type": "text", "text": "Paris."}]},
                {"role": "user", "content": f"and Norway? {marker}"},
            ],
        }
    if ingress == "chat":
        assistant = {"role": "assistant", "content": "Paris.", "thinking_blocks": [block]}
        return {
            "reasoning_effort": "low",
            "messages": [
                {"role": "user", "content": "capital of France?"},
                assistant,
                {"role": "user", "content": f"and Norway? {marker}"},
            ],
        }
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": block["thinking"]}],
        "encrypted_content": SIGNATURE,
    }
    return {
        "reasoning": {"effort": "low"},
        "input": [
            {"role": "user", "content": "capital of France?"},
            reasoning,
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": f"and Norway? {marker}"},
        ],
    }


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_reasoning_settings_and_thinking_history(
    call: Callable[..., Call], ingress: str, target: str
) -> None:
    result = call(ingress, target, thinking_request)
    assert result.error is None
    sent = result.sent
    if target == "openai":
        # OpenAI takes an effort and no reasoning back; an OpenAI client's own body is kept.
        assert sent["reasoning_effort"] == "low"
        assert "thinking" not in sent
        assert ("thinking_blocks" in json.dumps(sent)) == (ingress == "chat")
    elif target == "anthropic":
        budget = 2048 if ingress == "messages" else 1024
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert sent["max_tokens"] > budget
        first = sent["messages"][1]["content"][0]
        assert first == {
            "type": "thinking",
            "thinking": "Paris is in France.",
            "signature": SIGNATURE,
        }
    elif target == "bedrock":
        assert sent["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
        reasoning = sent["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]
        assert reasoning == {"text": "Paris is in France.", "signature": SIGNATURE}
    else:
        assert "thinking" not in sent and sent["messages"][-1]["content"].startswith("and Norway")


@pytest.mark.parametrize("ingress", INGRESS)
def test_thinking_and_cache_usage_come_back_in_each_protocol(
    call: Callable[..., Call], recorder: Recorder, ingress: str
) -> None:
    """Bedrock's reasoning output and its cache read/write counts, in each client's shape."""
    recorder.bedrock_answer = bedrock_answer(
        output={
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s1"}}},
                    {"text": "Oslo."},
                ],
            }
        },
        usage={
            "inputTokens": 20,
            "outputTokens": 3,
            "totalTokens": 123,
            "cacheReadInputTokens": 80,
            "cacheWriteInputTokens": 20,
        },
    )
    try:
        result = call(ingress, "bedrock", lambda i, m: user_text(i, f"Norway? {m}"))
    finally:
        recorder.bedrock_answer = {}
    assert result.error is None
    body = result.body
    if ingress == "chat":
        message = body.choices[0].message
        assert message.content == "Oslo." and message.reasoning_content == "hmm"
        assert message.thinking_blocks[0]["signature"] == "s1"
        assert body.usage.prompt_tokens == 120
        assert body.usage.prompt_tokens_details.cached_tokens == 80
    elif ingress == "messages":
        assert [b.type for b in body.content] == ["thinking", "text"]
        assert body.content[0].signature == "s1"
        assert (body.usage.input_tokens, body.usage.cache_read_input_tokens) == (20, 80)
        assert body.usage.cache_creation_input_tokens == 20
    else:
        assert [item.type for item in body.output] == ["reasoning", "message"]
        assert body.output[0].encrypted_content == "s1"
        assert body.usage.input_tokens == 120
        assert body.usage.input_tokens_details.cached_tokens == 80


# -- stop reasons -------------------------------------------------------------------------


@pytest.mark.parametrize("target", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_length_stop_reason(
    call: Callable[..., Call], recorder: Recorder, ingress: str, target: str
) -> None:
    recorder.bedrock_answer = bedrock_answer(stopReason="max_tokens")
    recorder.local_finish = "length"

    def build(i: str, m: str) -> dict[str, Any]:
        limit = {"chat": "max_tokens", "messages": "max_tokens", "responses": "max_output_tokens"}
        return user_text(i, f"tell me a long story {m}") | {limit[i]: 3}

    try:
        result = call(ingress, target, build)
    finally:
        recorder.bedrock_answer, recorder.local_finish = {}, "stop"
    assert result.error is None
    body = result.body
    if ingress == "chat":
        assert body.choices[0].finish_reason == "length"
    elif ingress == "messages":
        assert body.stop_reason == "max_tokens"
    else:
        assert body.status == "incomplete"
        assert body.incomplete_details.reason == "max_output_tokens"


# -- unknown fields -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["openai", "anthropic"])
@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_unknown_fields_pass_only_to_the_same_protocol(
    call: Callable[..., Call], ingress: str, target: str
) -> None:
    def build(i: str, m: str) -> dict[str, Any]:
        return user_text(i, f"hi {m}") | {"extra_body": {"x_vendor_flag": {"depth": 2}}}

    result = call(ingress, target, build)
    assert result.error is None
    same = (ingress, target) in (("chat", "openai"), ("messages", "anthropic"))
    assert result.sent.get("x_vendor_flag") == ({"depth": 2} if same else None)


# -- tool results with images (Anthropic clients, e.g. a screenshot tool) -----------------


@pytest.mark.parametrize("target", ["openai", "anthropic", "bedrock"])
def test_tool_result_images(call: Callable[..., Call], target: str) -> None:
    def build(ingress: str, marker: str) -> dict[str, Any]:
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
        }
        return {
            "max_tokens": 64,
            "tools": tool_definitions("messages"),
            "messages": [
                {"role": "user", "content": f"screenshot {marker}"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "call_s", "name": "get_weather", "input": {}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "call_s",
                            "is_error": True,
                            "content": [{"type": "text", "text": "shot"}, image],
                        }
                    ],
                },
            ],
        }

    result = call("messages", target, build)
    assert result.error is None
    sent = result.sent
    if target == "openai":
        # Tool messages hold text only: the image follows in a user message of its own.
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "user"]
        assert sent["messages"][2]["content"] == [{"type": "text", "text": "shot"}]
        assert sent["messages"][3]["content"][0]["image_url"]["url"].endswith(PNG)
    elif target == "anthropic":
        block = sent["messages"][2]["content"][0]
        assert block["is_error"] is True
        assert [c["type"] for c in block["content"]] == ["text", "image"]
    else:
        block = sent["messages"][2]["content"][0]["toolResult"]
        assert block["status"] == "error"
        assert block["content"][0] == {"text": "shot"} and "image" in block["content"][1]


@pytest.mark.parametrize("target", ["openai", "anthropic", "bedrock"])
def test_anthropic_betas_travel_with_the_fields_that_need_them(
    call: Callable[..., Call], upstream: str, target: str
) -> None:
    """A Messages client's beta header and the body field it enables reach an Anthropic
    target together (Claude on Bedrock takes the betas as `anthropic_beta`); other targets
    get neither."""
    beta = "context-management-2025-06-27"

    def build(ingress: str, marker: str) -> dict[str, Any]:
        return user_text(ingress, f"hi {marker}") | {
            "extra_headers": {"anthropic-beta": beta},
            "extra_body": {"context_management": {"edits": []}},
        }

    result = call("messages", target, build)
    assert result.error is None
    sent = result.sent
    if target == "anthropic":
        assert sent["context_management"] == {"edits": []}
        recorded = upstream_requests(upstream, result.marker)[-1]
        assert beta in recorded["headers"]["anthropic-beta"]
    elif target == "bedrock":
        assert sent["additionalModelRequestFields"]["anthropic_beta"] == [beta]
        assert "context_management" not in json.dumps(sent)
    else:
        assert "context_management" not in sent
        recorded = upstream_requests(upstream, result.marker)[-1]
        assert "anthropic-beta" not in recorded["headers"]


@pytest.mark.parametrize("target", ["anthropic", "bedrock"])
def test_message_level_cache_markers_from_openai_clients(
    call: Callable[..., Call], target: str
) -> None:
    """OpenCode-style markers on whole chat messages mark the message's last block."""

    def build(ingress: str, marker: str) -> dict[str, Any]:
        system = {
            "role": "system",
            "content": f"manual {marker}",
            "cache_control": {"type": "ephemeral"},
        }
        return {"messages": [system, {"role": "user", "content": "question"}]}

    result = call("chat", target, build)
    assert result.error is None
    if target == "anthropic":
        assert result.sent["system"][-1]["cache_control"] == {"type": "ephemeral"}
    else:
        assert result.sent["system"][-1] == {"cachePoint": {"type": "default"}}
