"""Streamed thinking, end to end: an Anthropic upstream that thinks, read by the gateway's
Anthropic adapter (the real `anthropic` SDK), and streamed to each client protocol, whose
official SDK accumulates it.

The upstream is a small aiohttp server on loopback that sends a recorded-shape Messages stream
(thinking block with its signature, then text); the mock upstream does not think.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from tests.support.servers import RunningGateway, free_port, gateway

EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-thinks",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "output_tokens": 1,
                "cache_read_input_tokens": 90,
                "cache_creation_input_tokens": 0,
            },
        },
    },
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Norway's capital "},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "is Oslo."},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "sig-Ab12"},
    },
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "text", "text": ""},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Oslo."}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 12},
    },
    {"type": "message_stop"},
]


RECEIVED: list[dict[str, Any]] = []


async def messages(request: web.Request) -> web.StreamResponse:
    RECEIVED.append(await request.json())
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in EVENTS:
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
    await response.write_eof()
    return response


@pytest.fixture(scope="module")
def thinking_upstream() -> Iterator[str]:
    port = free_port()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def gw(
    thinking_upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    policy = {
        "providers": {"ant": {"kind": "anthropic", "base_url": thinking_upstream, "api_key": "x"}},
        "models": {"thinker": {"targets": ["ant/claude-thinks"]}},
        "cache": {"enabled": False},
    }
    with gateway(policy, tmp_path_factory.mktemp("thinking")) as running:
        yield running


def test_anthropic_client_gets_the_signed_thinking_block(gw: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    with client.messages.stream(
        model="thinker",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "capital of Norway?"}],
    ) as stream:
        message = stream.get_final_message()
    thinking, text = message.content
    assert thinking.type == "thinking" and text.type == "text"
    assert thinking.thinking == "Norway's capital is Oslo." and thinking.signature == "sig-Ab12"
    assert text.text == "Oslo."
    assert message.usage.output_tokens == 12


def test_responses_client_gets_a_reasoning_item(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    with client.responses.stream(
        model="thinker", input="capital of Norway?", reasoning={"effort": "low"}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.reasoning_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Norway's capital is Oslo."
    reasoning, message = final.output
    assert message.type == "message"
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == "sig-Ab12"
    assert reasoning.content is not None and reasoning.content[0].text == deltas[0] + deltas[1]
    assert final.output_text == "Oslo."
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens == 90
    # The follow-up sends the signed thinking back to the Anthropic target.
    follow = client.responses.create(
        model="thinker",
        previous_response_id=final.id,
        input="and Sweden?",
        reasoning={"effort": "low"},
        stream=True,
    )
    assert [e.type for e in follow][-1] == "response.completed"
    sent = RECEIVED[-1]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}  # effort low
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Norway's capital is Oslo.",
        "signature": "sig-Ab12",
    }


def test_chat_client_gets_reasoning_content(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="thinker",
            messages=[{"role": "user", "content": "capital of Norway?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (reasoning, text) == ("Norway's capital is Oslo.", "Oslo.")
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == 100
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 90
