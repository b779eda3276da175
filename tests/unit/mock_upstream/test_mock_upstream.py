"""The mock upstream, driven by the official OpenAI and Anthropic SDKs over real loopback HTTP.

The SDKs are the judges of wire compatibility: if they parse a reply, so will the gateway's
provider adapters. Faults are asserted the way a client experiences them (status errors,
timeouts, a stream that ends without its final chunk, undecodable JSON).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
import pytest_asyncio
from aiohttp import web
from lockgate.mock_upstream import MockSettings, create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUESTION = "What is the capital of France? Answer briefly."
USER: Any = [{"role": "user", "content": QUESTION}]
WEATHER: Any = [{"role": "user", "content": "What's the weather in Paris?"}]
OPENAI_TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]
ANTHROPIC_TOOLS: Any = [
    {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@asynccontextmanager
async def serving(settings: MockSettings | None = None) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(settings or MockSettings()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def base_url() -> AsyncIterator[str]:
    async with serving() as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def oai(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def ant(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="x", max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def openai_chunks(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


# --- healthy answers -------------------------------------------------------------------------


async def test_openai_completion_echoes_prompt_and_model(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER)

    assert reply.model == "gpt-4o-mini"
    assert reply.object == "chat.completion"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content or ""
    assert content.startswith("mock answer to: What is the capital of France?")
    assert len(content.split()) == 16
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 16
    assert reply.usage.prompt_tokens == (len(QUESTION) + 3) // 4
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 16


async def test_openai_stream_has_role_content_finish_and_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=5,
    )
    chunks = await openai_chunks(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert "".join(contents) == "mock answer to: What is"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.model == "gpt-4o-mini" for c in chunks)


async def test_openai_raw_stream_ends_with_done(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {"model": "m", "messages": USER, "stream": True, "max_completion_tokens": 2}
    async with http.post(
        f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    ) as response:
        raw = (await response.read()).decode()

    assert response.headers["Content-Type"].startswith("text/event-stream")
    frames = raw.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    payloads = [json.loads(frame.removeprefix("data: ")) for frame in frames[:-2]]
    assert [p["choices"][0]["finish_reason"] for p in payloads] == [None, None, None, "length"]
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)


async def test_openai_tool_call(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(
        model="m",
        messages=WEATHER,
        tools=OPENAI_TOOLS,
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call: Any = (choice.message.tool_calls or [])[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock"}


async def test_openai_streamed_tool_call_deltas_assemble(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="m",
        messages=WEATHER,
        tools=OPENAI_TOOLS,
        stream=True,
    )
    chunks = await openai_chunks(stream)

    first = chunks[0].choices[0].delta.tool_calls[0]
    assert (first.index, first.type, first.function.name) == (0, "function", "get_weather")
    assert first.id.startswith("call_")
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in chunks[:-1])
    assert json.loads(arguments) == {"city": "mock"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_tool_result_turn_gets_plain_answer(oai: openai.AsyncOpenAI) -> None:
    messages: Any = [
        *WEATHER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = await oai.chat.completions.create(model="m", messages=messages, tools=OPENAI_TOOLS)

    assert reply.choices[0].finish_reason == "stop"
    assert (reply.choices[0].message.content or "").startswith("mock answer to: What's the weather")


async def test_anthropic_message(ant: anthropic.AsyncAnthropic) -> None:
    message = await ant.messages.create(
        model="claude-mock", max_tokens=100, system="Be brief.", messages=USER
    )

    assert message.model == "claude-mock"
    assert message.stop_reason == "end_turn"
    block: Any = message.content[0]
    assert block.text.startswith("mock answer to: What is the capital")
    assert message.usage.output_tokens == 16
    assert message.usage.input_tokens == (len(QUESTION) + len("Be brief.") + 3) // 4


async def test_anthropic_stream_event_sequence(ant: anthropic.AsyncAnthropic) -> None:
    stream = await ant.messages.create(
        model="claude-mock", max_tokens=3, messages=USER, stream=True
    )
    events: list[Any] = [event async for event in stream]

    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == "mock answer to:"
    delta: Any = events[-2]
    assert (delta.delta.stop_reason, delta.usage.output_tokens) == ("max_tokens", 3)


async def test_anthropic_raw_stream_includes_ping(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    body = {"model": "c", "max_tokens": 9, "messages": USER, "stream": True}
    async with http.post(f"{base_url}/v1/messages", json=body, headers={"x-api-key": "k"}) as r:
        raw = (await r.read()).decode()

    frames = [frame.split("\n") for frame in raw.split("\n\n") if frame]
    names = [lines[0].removeprefix("event: ") for lines in frames]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "message_stop"
    for name, data in ((lines[0][7:], json.loads(lines[1][6:])) for lines in frames):
        assert data["type"] == name


async def test_anthropic_tool_use_stream(ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(
        model="claude-mock",
        max_tokens=100,
        messages=WEATHER,
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        message = await stream.get_final_message()

    assert message.stop_reason == "tool_use"
    block: Any = message.content[0]
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "mock"})


async def test_models_listing_in_both_formats(
    oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    openai_ids = [model.id async for model in oai.models.list()]
    anthropic_ids = [model.id async for model in ant.models.list()]

    assert "gpt-4o-mini" in openai_ids
    assert anthropic_ids == openai_ids


# --- faults ----------------------------------------------------------------------------------


async def test_status_directive_with_retry_after(
    oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(openai.APIStatusError) as openai_error:
        await oai.chat.completions.create(model="m+status=429+retry_after=0.5", messages=USER)
    with pytest.raises(anthropic.APIStatusError) as anthropic_error:
        await ant.messages.create(model="c+status=503+retry_after=2", max_tokens=5, messages=USER)

    assert openai_error.value.status_code == 429
    assert openai_error.value.response.headers["retry-after"] == "0.5"
    openai_body: Any = openai_error.value.body
    assert openai_body["code"] == "rate_limit_exceeded"
    assert anthropic_error.value.status_code == 503
    assert anthropic_error.value.response.headers["retry-after"] == "2"
    anthropic_body: Any = anthropic_error.value.body
    assert anthropic_body["error"]["type"] == "overloaded_error"


async def test_streaming_request_gets_status_before_stream(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as error:
        await oai.chat.completions.create(model="m+status=500", messages=USER, stream=True)
    assert error.value.status_code == 500


async def test_fail_first_then_success(
    oai: openai.AsyncOpenAI, base_url: str, http: aiohttp.ClientSession
) -> None:
    model = "ff-test+fail_first=2"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await oai.chat.completions.create(model=model, messages=USER)
    reply = await oai.chat.completions.create(model=model, messages=USER)

    assert reply.model == model
    async with http.get(f"{base_url}/_mock/stats") as response:
        assert (await response.json())["requests"][model] == 3


async def test_fail_first_gates_other_faults(oai: openai.AsyncOpenAI) -> None:
    model = "ff-stall+fail_first=1+timeout"
    with pytest.raises(openai.APITimeoutError):
        await oai.with_options(timeout=0.2).chat.completions.create(model=model, messages=USER)
    reply = await oai.chat.completions.create(model=model, messages=USER)
    assert reply.choices[0].finish_reason == "stop"


async def test_stats_and_reset(base_url: str, http: aiohttp.ClientSession) -> None:
    body = {"model": "stats-probe", "messages": USER}
    for _ in range(2):
        async with http.post(
            f"{base_url}/v1/chat/completions", json=body, headers={"x-api-key": "k"}
        ) as r:
            assert r.status == 200
    async with http.get(f"{base_url}/_mock/stats") as r:
        assert (await r.json())["requests"]["stats-probe"] == 2
    async with http.post(f"{base_url}/_mock/reset") as r:
        assert r.status == 200
    async with http.get(f"{base_url}/_mock/stats") as r:
        assert (await r.json())["requests"] == {}


@pytest.mark.parametrize("model", ["m+timeout", "m+stall_after=2"])
async def test_non_streaming_hang_hits_client_timeout(oai: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.APITimeoutError):
        await oai.with_options(timeout=0.2).chat.completions.create(model=model, messages=USER)


async def test_stall_after_sends_chunks_then_nothing(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.with_options(timeout=0.3).chat.completions.create(
        model="m+stall_after=2",
        messages=USER,
        stream=True,
    )
    received: list[Any] = []
    with pytest.raises(openai.APITimeoutError):
        async for chunk in stream:
            received.append(chunk)

    assert [c.choices[0].delta.content for c in received] == ["", "mock", " answer"]


async def test_cut_after_ends_stream_without_finish(
    oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    stream = await oai.chat.completions.create(model="m+cut_after=3", messages=USER, stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 4
    assert all(c.choices[0].finish_reason is None for c in received)

    events: list[str] = []
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async for event in await ant.messages.create(
            model="c+cut_after=1", max_tokens=50, messages=USER, stream=True
        ):
            events.append(event.type)
    assert events == ["message_start", "content_block_start", "content_block_delta"]


async def test_cut_after_drops_non_streaming_request(ant: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        await ant.messages.create(model="c+cut_after=0", max_tokens=5, messages=USER)


async def test_malformed_after(oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    stream = await oai.chat.completions.create(
        model="m+malformed_after=1",
        messages=USER,
        stream=True,
    )
    received: list[Any] = []
    with pytest.raises(ValueError):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 2

    with pytest.raises(ValueError):
        await ant.messages.create(model="c+malformed_after=0", max_tokens=5, messages=USER)


async def test_error_after_sends_in_stream_error_event(
    oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    stream = await oai.chat.completions.create(model="m+error_after=2", messages=USER, stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIError, match="server had an error"):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 3

    events: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as error:
        async for event in await ant.messages.create(
            model="c+error_after=1", max_tokens=50, messages=USER, stream=True
        ):
            events.append(event.type)
    assert events == ["message_start", "content_block_start", "content_block_delta"]
    body: Any = error.value.body
    assert body["error"]["type"] == "overloaded_error"


async def test_pacing_and_latency_directives(oai: openai.AsyncOpenAI) -> None:
    started = time.perf_counter()
    stream = await oai.chat.completions.create(
        model="m+latency_ms=40+ttft_ms=20+tps=100+tokens=6",
        messages=USER,
        stream=True,
    )
    chunks = await openai_chunks(stream)

    assert time.perf_counter() - started >= 0.04 + 0.02 + 5 / 100
    assert len(chunks) == 1 + 6 + 1


async def test_server_settings_apply() -> None:
    async with serving(MockSettings(latency_ms=60, tokens=3)) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        started = time.perf_counter()
        reply = await client.chat.completions.create(model="m", messages=USER)
        elapsed = time.perf_counter() - started
        await client.close()

    assert reply.choices[0].message.content == "mock answer to:"
    assert elapsed >= 0.06


async def test_shutdown_releases_stalled_streams() -> None:
    async with serving() as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="m+stall_after=0",
            messages=USER,
            stream=True,
        )
        first = await stream.__anext__()
        assert first.choices[0].delta.role == "assistant"
        started = time.perf_counter()
    assert time.perf_counter() - started < 2
    with pytest.raises(openai.APIConnectionError):
        await stream.__anext__()
    await client.close()


async def test_run_serves_until_interrupted(http: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from lockgate.mock_upstream import MockSettings, run; "
        f"run(port={port}, settings=MockSettings(tokens=2))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        body = await _post_when_up(http, f"http://127.0.0.1:{port}/v1/chat/completions")
        assert body["choices"][0]["message"]["content"] == "mock answer"
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0


async def _post_when_up(http: aiohttp.ClientSession, url: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        try:
            async with http.post(
                url, json={"model": "m", "messages": USER}, headers={"x-api-key": "k"}
            ) as response:
                return await response.json()
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# --- request validation ----------------------------------------------------------------------


async def test_unknown_directive_is_400_in_each_envelope(
    oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as openai_error:
        await oai.chat.completions.create(model="m+bogus=1", messages=USER)
    with pytest.raises(anthropic.BadRequestError) as anthropic_error:
        await ant.messages.create(model="c+status=abc", max_tokens=5, messages=USER)

    openai_body: Any = openai_error.value.body
    assert "bogus" in openai_body["message"]
    assert anthropic_error.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "mock directive status='abc' must be a non-negative integer",
        },
    }


@pytest.mark.parametrize(
    ("path", "envelope_key"), [("/v1/chat/completions", "error"), ("/v1/messages", "type")]
)
async def test_missing_credentials_is_401(
    base_url: str, http: aiohttp.ClientSession, path: str, envelope_key: str
) -> None:
    async with http.post(f"{base_url}{path}", json={"model": "m", "messages": USER}) as response:
        body = await response.json()
    assert response.status == 401
    assert envelope_key in body


async def test_invalid_json_is_400(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{base_url}/v1/chat/completions", data=b"{nope", headers={"x-api-key": "k"}
    ) as response:
        body = await response.json()
    assert response.status == 400
    assert body["error"]["type"] == "invalid_request_error"


async def test_many_concurrent_requests(oai: openai.AsyncOpenAI) -> None:
    replies = await asyncio.gather(
        *(oai.chat.completions.create(model=f"load-{i % 4}", messages=USER) for i in range(64))
    )
    assert {r.model for r in replies} == {"load-0", "load-1", "load-2", "load-3"}


async def test_wrong_type_answers_an_html_page(base_url: str, http: aiohttp.ClientSession) -> None:
    """A misconfigured proxy's 200: not JSON, not SSE, in either format."""
    for path in ("/v1/chat/completions", "/v1/messages"):
        async with http.post(
            f"{base_url}{path}",
            json={"model": "m+wrong_type", "messages": USER, "stream": True, "max_tokens": 5},
            headers={"authorization": "Bearer k", "x-api-key": "k"},
        ) as response:
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/html")
            assert (await response.read()).startswith(b"<html>")


async def test_payment_required_is_a_status_like_any_other(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await oai.chat.completions.create(model="m+status=402", messages=USER)
    assert caught.value.status_code == 402
