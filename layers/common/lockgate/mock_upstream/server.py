"""The aiohttp application of the mock upstream: routes, fault execution and pacing.

Everything that can be computed before the request is (model lists, header sets, parsed
directives, answer words), and the hot path is a JSON parse, a dict update and one
``orjson.dumps``, so the mock stays far faster than the gateway it is used to measure.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from lockgate.mock_upstream.answers import compose
from lockgate.mock_upstream.anthropic_wire import AnthropicWire
from lockgate.mock_upstream.directives import (
    DirectiveError,
    Directives,
    Fault,
    StreamFault,
    parse_model,
)
from lockgate.mock_upstream.openai_wire import OpenAIWire
from lockgate.mock_upstream.wire import StreamPlan, Wire

_OPENAI: Wire = OpenAIWire()
_ANTHROPIC: Wire = AnthropicWire()
_JSON_HEADERS = {"Content-Type": "application/json"}
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_MAX_BODY_BYTES = 64 * 1024 * 1024
_PROXY_PAGE = b"<html><body><h1>Welcome</h1><p>This is not an API.</p></body></html>"
_HOLD_POLL_S = 0.05
_RECORDED = 256
"""Request bodies kept for ``GET /_mock/requests``."""
_MODELS = ("mock-small", "mock-large", "gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest")


@dataclass(frozen=True)
class MockSettings:
    """Server-wide behaviour; each field can be overridden per request by a model directive."""

    latency_ms: float = 0.0
    """Delay before the response (non-streaming) or before the headers (streaming)."""
    ttft_ms: float = 0.0
    """Extra time to the first token when streaming."""
    tokens_per_second: float = 0.0
    """Pace of streamed chunks; 0 sends them as fast as possible."""
    tokens: int = 16
    """Output tokens (words) per answer."""


@dataclass(frozen=True, slots=True)
class _Timing:
    latency_ms: float
    ttft_ms: float
    tokens_per_second: float
    tokens: int


class _MockServer:
    """Request handlers plus the per-model request counters that ``fail_first`` relies on."""

    def __init__(self, settings: MockSettings) -> None:
        self._settings = settings
        self._requests: dict[str, int] = {}
        self._serials = itertools.count(1)
        self._closing = False
        self._openai_models = _openai_model_list()
        self._anthropic_models = _anthropic_model_list()
        self._recorded: collections.deque[dict[str, Any]] = collections.deque(maxlen=_RECORDED)

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _OPENAI)

    async def anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, _ANTHROPIC)

    async def models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models`` in the format of whichever SDK asks (Anthropic's sends a version)."""
        anthropic = "anthropic-version" in request.headers
        wire = _ANTHROPIC if anthropic else _OPENAI
        if not _authorized(request.headers):
            return _error(wire, 401, "missing API key")
        body = self._anthropic_models if anthropic else self._openai_models
        return web.Response(body=body, headers=_JSON_HEADERS)

    async def stats(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=orjson.dumps({"requests": self._requests}), headers=_JSON_HEADERS)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/embeddings``: a deterministic 8-dimensional vector per input (from its
        hash), one token per word, in OpenAI's float shape."""
        if not _authorized(request.headers):
            return _error(_OPENAI, 401, "missing API key")
        try:
            body = orjson.loads(await request.read())
            inputs = body["input"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error(_OPENAI, 400, "input is required")
        self._recorded.append({"path": request.path, "body": body})
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": _mock_vector(str(text))}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(t) if isinstance(t, list) else len(str(t).split()) for t in inputs)
        answer = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.Response(body=orjson.dumps(answer), headers=_JSON_HEADERS)

    async def recorded(self, request: web.Request) -> web.StreamResponse:
        """``GET /_mock/requests``: the last request bodies received, oldest first, each as
        ``{"path": ..., "body": ..., "headers": ...}`` (credentials left out), so a test can
        check what the gateway sent upstream."""
        return web.Response(body=orjson.dumps(list(self._recorded)), headers=_JSON_HEADERS)

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self._requests.clear()
        self._recorded.clear()
        return web.Response(body=b'{"requests":{}}', headers=_JSON_HEADERS)

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"status":"ok"}', headers=_JSON_HEADERS)

    async def on_shutdown(self, app: web.Application) -> None:
        """Release held requests so that a shutdown does not wait for stalls to time out."""
        self._closing = True

    async def _chat(self, request: web.Request, wire: Wire) -> web.StreamResponse:
        """Validate, count, apply faults in order (latency, status, timeout), then answer."""
        if not _authorized(request.headers):
            return _error(wire, 401, "missing API key: send Authorization: Bearer or x-api-key")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(wire, 400, "request body is not valid JSON")
        self._recorded.append({"path": request.path, "body": body, "headers": _kept(request)})
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return _error(wire, 400, "model is required")
        number = self._requests.get(model, 0) + 1
        self._requests[model] = number
        try:
            directives = parse_model(model)
        except DirectiveError as exc:
            return _error(wire, 400, str(exc))
        timing = self._timing(directives)
        fault = directives.fault_for(number)
        await _sleep_ms(timing.latency_ms)
        if fault.status is not None:
            message = f"mock upstream failure {fault.status} for model {model}"
            return _error(wire, fault.status, message, directives.retry_after)
        if fault.timeout:
            return await self._hang(request)
        if fault.wrong_type:
            return web.Response(body=_PROXY_PAGE, headers={"Content-Type": "text/html"})
        return await self._answer(request, wire, body, model, timing, fault)

    async def _answer(
        self,
        request: web.Request,
        wire: Wire,
        body: dict[str, Any],
        model: str,
        timing: _Timing,
        fault: Fault,
    ) -> web.StreamResponse:
        digest = wire.digest(body)
        answer = compose(digest, timing.tokens)
        serial = next(self._serials)
        if digest.stream:
            plan = wire.render_stream(answer, digest, model, serial)
            return await self._stream(request, wire, plan, timing, fault)
        if fault.stream_fault is not None:
            return await self._fail_buffered(request, wire, fault.stream_fault, model)
        return web.Response(body=wire.render(answer, digest, model, serial), headers=_JSON_HEADERS)

    async def _fail_buffered(
        self, request: web.Request, wire: Wire, kind: StreamFault, model: str
    ) -> web.StreamResponse:
        """A stream fault on a non-streaming request: the same failure, with no chunks first."""
        if kind is StreamFault.STALL:
            return await self._hang(request)
        if kind is StreamFault.CUT:
            return _abandon(request)
        if kind is StreamFault.MALFORMED:
            return web.Response(body=b'{"id": "truncated', headers=_JSON_HEADERS)
        return _error(wire, 500, f"mock upstream failed while answering for model {model}")

    async def _stream(
        self, request: web.Request, wire: Wire, plan: StreamPlan, timing: _Timing, fault: Fault
    ) -> web.StreamResponse:
        """Send the SSE frames, paced if asked, and misbehave after ``fault.after`` chunks."""
        response = web.StreamResponse(headers=_SSE_HEADERS)
        chunks = plan.chunks if fault.stream_fault is None else plan.chunks[: fault.after]
        try:
            await response.prepare(request)
            await _sleep_ms(timing.ttft_ms)
            if timing.tokens_per_second > 0:
                await _write_paced(response, plan.head, chunks, timing.tokens_per_second)
            elif fault.stream_fault is None:
                await response.write_eof(plan.head + b"".join(chunks) + plan.tail)
                return response
            else:
                await response.write(plan.head + b"".join(chunks))
            await self._finish_stream(request, response, wire, plan, fault)
        except ConnectionError:
            pass  # The client went away; there is no one left to answer.
        return response

    async def _finish_stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        wire: Wire,
        plan: StreamPlan,
        fault: Fault,
    ) -> None:
        if fault.stream_fault is None:
            await response.write_eof(plan.tail)
        elif fault.stream_fault is StreamFault.MALFORMED:
            await response.write_eof(wire.malformed_frame)
        elif fault.stream_fault is StreamFault.ERROR:
            await response.write_eof(wire.error_frame)
        elif fault.stream_fault is StreamFault.STALL:
            await self._wait_until_gone(request)
            _drop(request)
        else:
            _drop(request)

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        """Never answer: hold the request until the client gives up, then drop it."""
        await self._wait_until_gone(request)
        return _abandon(request)

    async def _wait_until_gone(self, request: web.Request) -> None:
        """Sleep until the client disconnects or the server shuts down.

        aiohttp cancels a handler on disconnect only when the runner enables
        ``handler_cancellation`` (``run`` does; a test's ``AppRunner`` may not), and it offers
        no event for a lost connection, so poll.
        """
        while not self._closing and _connected(request):  # noqa: ASYNC110
            await asyncio.sleep(_HOLD_POLL_S)

    def _timing(self, directives: Directives) -> _Timing:
        settings = self._settings
        return _Timing(
            latency_ms=_pick(directives.latency_ms, settings.latency_ms),
            ttft_ms=_pick(directives.ttft_ms, settings.ttft_ms),
            tokens_per_second=_pick(directives.tps, settings.tokens_per_second),
            tokens=settings.tokens if directives.tokens is None else directives.tokens,
        )


def _kept(request: web.Request) -> dict[str, str]:
    """The request's headers for ``GET /_mock/requests``, credentials left out."""
    return {
        k.lower(): v
        for k, v in request.headers.items()
        if k.lower() not in ("authorization", "x-api-key")
    }


def _mock_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255 - 0.5, 4) for b in digest[:8]]


def _pick(override: float | None, default: float) -> float:
    return default if override is None else override


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


async def _write_paced(
    response: web.StreamResponse, head: bytes, chunks: tuple[bytes, ...], rate: float
) -> None:
    """Write one chunk per ``1/rate`` seconds against a fixed schedule, so sleeps don't drift."""
    loop = asyncio.get_running_loop()
    await response.write(head)
    start = loop.time()
    for index, chunk in enumerate(chunks):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await response.write(chunk)


def _authorized(headers: CIMultiDictProxy[str]) -> bool:
    """Any bearer token or x-api-key will do; only their absence is refused, as upstreams do."""
    authorization = headers.get("Authorization")
    if authorization is not None:
        return authorization.startswith("Bearer ") and len(authorization) > len("Bearer ")
    return bool(headers.get("x-api-key"))


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _drop(request: web.Request) -> None:
    """Close the connection without finishing the response, like a crashed upstream."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _abandon(request: web.Request) -> web.StreamResponse:
    """Drop the connection; the returned response is only a placeholder aiohttp cannot send."""
    _drop(request)
    return web.Response(status=502)


def _error(wire: Wire, status: int, message: str, retry_after: float | None = None) -> web.Response:
    headers = _JSON_HEADERS
    if retry_after is not None:
        headers = {**_JSON_HEADERS, "Retry-After": _format_seconds(retry_after)}
    return web.Response(status=status, body=wire.error_body(status, message), headers=headers)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


def _openai_model_list() -> bytes:
    created = int(time.time())
    data = [
        {"id": m, "object": "model", "created": created, "owned_by": "lockgate-mock"}
        for m in _MODELS
    ]
    return orjson.dumps({"object": "list", "data": data})


def _anthropic_model_list() -> bytes:
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
        for m in _MODELS
    ]
    return orjson.dumps(
        {"data": data, "has_more": False, "first_id": _MODELS[0], "last_id": _MODELS[-1]}
    )


def create_app(settings: MockSettings = MockSettings()) -> web.Application:
    """The mock upstream as an aiohttp application (tests run it with ``web.AppRunner``)."""
    server = _MockServer(settings)
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app.router.add_post("/v1/chat/completions", server.openai_chat)
    app.router.add_post("/v1/messages", server.anthropic_messages)
    app.router.add_get("/v1/models", server.models)
    app.router.add_get("/_mock/stats", server.stats)
    app.router.add_post("/_mock/reset", server.reset)
    app.router.add_get("/_mock/requests", server.recorded)
    app.router.add_post("/v1/embeddings", server.embeddings)
    app.router.add_get("/_mock/health", server.health)
    app.on_shutdown.append(server.on_shutdown)
    return app


def run(host: str = "127.0.0.1", port: int = 9000, settings: MockSettings = MockSettings()) -> None:
    """Serve until interrupted, on uvloop when it is installed, without an access log."""
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,
        backlog=4096,
        handler_cancellation=True,
        shutdown_timeout=1.0,
        loop=_new_event_loop(),
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
