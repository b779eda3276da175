"""The OpenAI adapter over the shared HTTP client, against the project's mock upstream (the
OpenAI wire byte for byte: error envelopes, Retry-After, in-stream error frames, cuts) served
on 127.0.0.1, and a small recorder for what goes on the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from lockgate.chat import ChatChunk, ChatRequest
from lockgate.mock_upstream import MockSettings
from lockgate.mock_upstream import create_app as create_mock_app
from lockgate.policy import OpenAIProviderConfig, Timeouts
from lockgate.providers.errors import ErrorKind, ProviderError
from lockgate.providers.openai import OpenAIProvider

from tests.support.servers import serve
from tests.unit.providers.helpers import TOOLS

API_KEY = "sk-test-upstream-key"


@asynccontextmanager
async def provider(**timeouts: float) -> AsyncIterator[OpenAIProvider]:
    async with serve(create_mock_app(MockSettings(tokens=4))) as url:
        config = OpenAIProviderConfig(kind="openai", base_url=f"{url}/v1", api_key=API_KEY)
        adapter = OpenAIProvider("mock", config, Timeouts(**timeouts))
        try:
            yield adapter
        finally:
            await adapter.aclose()


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "Weather in Paris?"}])
    return ChatRequest(model="alias", **fields)


async def failure(adapter: OpenAIProvider, model: str, *, stream: bool) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        if stream:
            [chunk async for chunk in adapter.stream(chat(), model)]
        else:
            await adapter.complete(chat(), model)
    return caught.value


async def test_complete_and_stream_answer_with_usage() -> None:
    async with provider() as adapter:
        result = await adapter.complete(chat(), "gpt-test")
        chunks = [chunk async for chunk in adapter.stream(chat(), "gpt-test")]
    assert result.text and result.finish_reason == "stop"
    assert result.usage.completion_tokens == 4
    assert "".join(c.text for c in chunks) == result.text
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    final = chunks[-1]
    assert final.finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens == 4


async def test_statuses_map_onto_the_taxonomy_with_retry_after() -> None:
    async with provider() as adapter:
        for stream in (False, True):
            limited = await failure(adapter, "m+status=429+retry_after=1.5", stream=stream)
            assert (limited.kind, limited.status, limited.retry_after) == (
                ErrorKind.RETRYABLE,
                429,
                1.5,
            )
            assert "mock upstream failure 429" in limited.message
            unknown = await failure(adapter, "m+status=404", stream=stream)
            assert (unknown.kind, unknown.status) == (ErrorKind.TARGET, 404)
            invalid = await failure(adapter, "m+status=400", stream=stream)
            assert (invalid.kind, invalid.status) == (ErrorKind.REQUEST, 400)


async def test_faults_inside_a_stream() -> None:
    async with provider() as adapter:
        error = await failure(adapter, "m+error_after=1", stream=True)
        malformed = await failure(adapter, "m+malformed_after=1", stream=True)
        cut = await failure(adapter, "m+cut_after=1", stream=True)
        truncated = await failure(adapter, "m+malformed_after=0", stream=False)
    assert (error.kind, error.code) == (ErrorKind.RETRYABLE, "upstream_stream_error")
    assert "The server had an error" in error.message
    assert (malformed.kind, malformed.code) == (ErrorKind.RETRYABLE, "malformed_upstream")
    assert (truncated.kind, truncated.code) == (ErrorKind.RETRYABLE, "malformed_upstream")
    assert (cut.kind, cut.code) == (ErrorKind.RETRYABLE, "connection_error")


async def test_read_timeout_and_refused_connection_are_retryable() -> None:
    async with provider(total_s=0.2) as adapter:
        slow = await failure(adapter, "m+timeout", stream=False)
        stalled = await failure(adapter, "m+timeout", stream=True)
    assert (slow.kind, slow.code) == (ErrorKind.RETRYABLE, "timeout_read")
    assert (stalled.kind, stalled.code) == (ErrorKind.RETRYABLE, "timeout_read")
    config = OpenAIProviderConfig(kind="openai", base_url="http://127.0.0.1:9/v1", api_key="k")
    adapter = OpenAIProvider("dead", config, Timeouts(connect_s=0.5))
    try:
        refused = await failure(adapter, "m", stream=True)
    finally:
        await adapter.aclose()
    assert (refused.kind, refused.code) == (ErrorKind.RETRYABLE, "connection_error")


async def test_wire_request_carries_auth_organization_headers_and_the_body() -> None:
    seen: list[tuple[Mapping[str, str], dict[str, Any]]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.headers.copy(), await request.json()))
        body = {
            "choices": [{"message": {"content": "hi", "tool_calls": None}, "finish_reason": "stop"}]
        }
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", record)
    async with serve(app) as url:
        config = OpenAIProviderConfig(
            kind="openai",
            base_url=f"{url}/v1",
            api_key=API_KEY,
            organization="org-1",
            headers={"x-extra": "yes"},
        )
        adapter = OpenAIProvider("rec", config, Timeouts())
        try:
            result = await adapter.complete(chat(tools=TOOLS, temperature=0.2, seed=7), "gpt-x")
        finally:
            await adapter.aclose()
    headers, body = seen[0]
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["x-extra"] == "yes"
    assert headers["Content-Type"] == "application/json"
    assert body["model"] == "gpt-x"
    assert body["tools"] == TOOLS
    assert (body["temperature"], body["seed"]) == (0.2, 7)
    assert "stream" not in body and "lockgate" not in body
    assert result.text == "hi" and result.usage.prompt_tokens == 0


async def test_leaving_a_stream_early_closes_the_upstream_connection() -> None:
    disconnected = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        event = {"choices": [{"delta": {"content": "tick"}, "finish_reason": None}]}
        try:
            for _ in range(500):
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
                await asyncio.sleep(0.01)
        except (ConnectionResetError, ConnectionError):
            disconnected.set()
        if request.transport is None or request.transport.is_closing():
            disconnected.set()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", endless)
    async with serve(app) as url:
        config = OpenAIProviderConfig(kind="openai", base_url=f"{url}/v1", api_key="k")
        adapter = OpenAIProvider("endless", config, Timeouts())
        try:
            stream = adapter.stream(chat(), "m")
            first: ChatChunk = await anext(stream)  # type: ignore[call-overload]
            assert first.text == "tick"
            await stream.aclose()  # type: ignore[attr-defined]
            await asyncio.wait_for(disconnected.wait(), 3)
        finally:
            await adapter.aclose()


async def test_requests_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recording HTTP proxy on 127.0.0.1 stands in for a corporate proxy: the upstream's
    host does not even resolve, so only the proxy can have answered."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        body = {"choices": [{"message": {"content": "via proxy"}, "finish_reason": "stop"}]}
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with serve(app) as url:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", url)
        config = OpenAIProviderConfig(
            kind="openai", base_url="http://upstream.invalid/v1", api_key="k"
        )
        adapter = OpenAIProvider("proxied", config, Timeouts())
        try:
            result = await adapter.complete(chat(), "m")
        finally:
            await adapter.aclose()
    assert result.text == "via proxy"
    assert seen and seen[0].endswith("/v1/chat/completions")
