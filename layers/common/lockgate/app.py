"""The FastAPI application factory. Routes stay thin: parse, delegate to the pipeline, encode."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockgate import __version__
from lockgate.api import anthropic as anthropic_wire
from lockgate.api.conversations import ResponsesTurn, stored_response
from lockgate.api.documents import documents_router
from lockgate.api.embeddings import EmbeddingsRequest, embeddings_body
from lockgate.api.errors import (
    GatewayError,
    bad_request,
    body_too_large,
    openai_error_body,
    to_gateway_error,
)
from lockgate.api.http import (
    api_key,
    gateway_key_id,
    headers_of,
    json_response,
    parse,
    read_body,
    request_id,
)
from lockgate.api.openai import ChunkEncoder, completion_body
from lockgate.bootstrap import Container, build
from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.observability import log_request
from lockgate.pipeline import CacheControl, RequestContext
from lockgate.settings import Settings
from lockgate.stores.responses import ResponseStore
from lockgate.tenants.admin import admin_router

_SSE_HEAD = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_SSE_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    container = container or build(settings or Settings.from_env())
    gateway = container.gateway
    limit = container.settings.max_body_bytes

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await container.start()
        yield
        await container.aclose()

    app = _Gateway(title="Lockgate", version=__version__, lifespan=lifespan)
    app.state.container = container
    for middleware, options in container.middleware:
        app.add_middleware(middleware, **options)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        return _error_response(request, exc, RequestContext(request_id(request)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        error = GatewayError(
            exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None
        )
        return _error_response(request, error, RequestContext(request_id(request)))

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> Response:
        """A missing or malformed query or path parameter: 400 in the envelope, naming the
        parameter (never echoing its value), rather than FastAPI's 422 `{"detail": ...}`."""
        first = exc.errors()[0] if exc.errors() else {}
        param = str(list(first.get("loc", ()))[-1]) if first.get("loc") else None
        problem = "is required" if first.get("type") == "missing" else "is invalid"
        error = bad_request(f"The parameter {param!r} {problem}.", param=param)
        return _error_response(request, error, RequestContext(request_id(request)))

    app.add_middleware(_BoundedBodies, limit=limit, own_limit=(OPENAI.path, ANTHROPIC.path))
    app.add_middleware(_LastResort)

    @app.get("/health")
    async def health() -> Response:
        return json_response({"status": "ok", "version": __version__})

    if container.metrics_text is not None:
        metrics_text = container.metrics_text

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(metrics_text(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        ctx = RequestContext(request_id(request))
        try:
            await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
        except Exception as exc:
            return _failure(request, exc, ctx)
        names = gateway.router.model_names
        if container.embeddings is not None:
            names = [*names, *container.embeddings.model_names]
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "lockgate"} for name in names
        ]
        return json_response({"object": "list", "data": data}, headers=ctx.headers())

    @app.get("/v1/usage")
    async def usage(request: Request, period: str | None = None) -> Response:
        """The caller's own requests, tokens, cost and cache savings for a month (`YYYY-MM`)."""
        ctx = RequestContext(request_id(request))
        try:
            tenant = await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
            summary = await container.ledger.usage_summary(tenant.id, period)
        except ValueError as exc:
            return _error_response(request, bad_request(str(exc), param="period"), ctx)
        except Exception as exc:
            return _failure(request, exc, ctx)
        return json_response(summary, headers=ctx.headers())

    @app.delete("/v1/cache")
    async def purge_cache(request: Request, alias: str | None = None) -> Response:
        """Removes the caller's own cached answers (one alias's with `?alias=`)."""
        ctx = RequestContext(request_id(request))
        try:
            tenant = await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
            if gateway.cache is None:
                raise GatewayError(404, "Caching is not configured.", code="cache_disabled")
            removed = await gateway.cache.purge(tenant.id, alias)
        except Exception as exc:
            return _failure(request, exc, ctx)
        return json_response({"purged": removed, "alias": alias}, headers=ctx.headers())

    async def chat(request: Request, wire: Wire) -> Response:
        started = time.perf_counter()
        ctx = RequestContext(request_id(request))
        try:
            await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
            chat = wire.parse(await read_body(request, limit))
            headers = headers_of(request)
            chat.keep_headers(headers)
            control = CacheControl.of(chat, headers.get("cache-control"))
            if chat.stream:
                chunks = await gateway.stream(chat, ctx, control)
                return _sse(wire, chat, chunks, ctx, started)
            result = await gateway.complete(chat, ctx, control)
            response = json_response(wire.body(result, _model(ctx)), headers=ctx.headers())
        except Exception as exc:
            response = _failure(request, exc, ctx)
        return _logged_after_sending(
            response, _fields(wire.path, ctx, response.status_code), started
        )

    async def chat_completions(request: Request) -> Response:
        return await chat(request, OPENAI)

    async def messages(request: Request) -> Response:
        return await chat(request, ANTHROPIC)

    async def responses(request: Request) -> Response:
        """The Responses API: the chat flow, with the conversation read before and kept after."""
        started = time.perf_counter()
        ctx = RequestContext(request_id(request))
        path = "/v1/responses"
        try:
            tenant = await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
            body = await read_body(request, limit)
            turn = await ResponsesTurn.open(
                body, _conversations(container), tenant.id, container.policy.response_ttl_s
            )
            control = CacheControl.of(turn.chat, headers_of(request).get("cache-control"))
            if turn.chat.stream:
                chunks = await gateway.stream(turn.chat, ctx, control)
                return _sse(turn, turn.chat, turn.remembering(chunks), ctx, started)
            result = await gateway.complete(turn.chat, ctx, control)
            answer = turn.body(result, _model(ctx))
            await turn.remember(answer)
            response = json_response(answer, headers=ctx.headers())
        except Exception as exc:
            response = _failure(request, exc, ctx)
        return _logged_after_sending(response, _fields(path, ctx, response.status_code), started)

    async def embeddings(request: Request) -> Response:
        started = time.perf_counter()
        ctx = RequestContext(request_id(request))
        try:
            await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
            body = parse(EmbeddingsRequest, await read_body(request, limit))
            if container.embeddings is None:
                raise GatewayError(404, "Embeddings are not configured.", code="not_found")
            result = await container.embeddings.embed(body, ctx)
            answer = embeddings_body(result, model=body.model, encoding=body.encoding_format)
            response = json_response(answer, headers=ctx.headers())
        except Exception as exc:
            response = _failure(request, exc, ctx)
        return _logged_after_sending(
            response, _fields("/v1/embeddings", ctx, response.status_code), started
        )

    async def stored(request: Request) -> Response:
        """`GET /v1/responses/{id}`, `DELETE` too: the caller's own stored responses only."""
        ctx = RequestContext(request_id(request))
        response_id = request.path_params["response_id"]
        try:
            tenant = await gateway.authenticate(api_key(request), ctx, gateway_key_id(request))
            store = _conversations(container)
            if request.method == "DELETE":
                if not await store.delete(tenant.id, response_id):
                    await stored_response(store, tenant.id, response_id)
                body = {"id": response_id, "object": "response", "deleted": True}
            else:
                body = await stored_response(store, tenant.id, response_id)
        except Exception as exc:
            return _failure(request, exc, ctx)
        return json_response(body, headers=ctx.headers())

    # The chat routes are the hot path: mounted as plain Starlette routes, they skip FastAPI's
    # per-request dependency resolution, which they do not use.
    app.add_route(OPENAI.path, chat_completions, methods=["POST"])
    app.add_route(ANTHROPIC.path, messages, methods=["POST"])
    app.add_route("/v1/responses", responses, methods=["POST"])
    app.add_route("/v1/embeddings", embeddings, methods=["POST"])
    app.add_route("/v1/responses/{response_id}", stored, methods=["GET", "DELETE"])

    hot = {OPENAI.path: chat_completions, ANTHROPIC.path: messages}
    app.hot_paths = {path: _hot_chain(handler, container) for path, handler in hot.items()}

    app.include_router(documents_router(gateway, limit))
    admin_key = container.settings.admin_key
    app.include_router(
        admin_router(container.tenants, admin_key.get_secret_value() if admin_key else None)
    )
    return app


class _Gateway(FastAPI):
    """FastAPI, with the chat routes taken straight to their handlers.

    The chat routes catch every error themselves and use none of FastAPI's per-request
    machinery, yet each request would pass through its whole stack: server-error and exception
    middleware, the telemetry and body-limit layers, the router's matching. At a gateway's
    request rates those layers cost as much as relaying the call, so a POST to a chat path
    runs only what it needs: `_LastResort`, the container's middleware (tracing), the handler.
    Anything else, including a chat path under a `root_path`, takes the full stack.
    """

    hot_paths: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            hot = self.hot_paths.get(scope["path"])
            if hot is not None and not (self.root_path or scope.get("root_path")):
                scope["app"] = self
                await hot(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _hot_chain(handler: Callable[[Request], Awaitable[Response]], container: Container) -> ASGIApp:
    """The handler as an ASGI app, wrapped as the full stack wraps it (`_BoundedBodies` lets
    the chat paths through untouched: they bound their own bodies)."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    app: ASGIApp = endpoint
    for middleware, options in container.middleware:
        app = middleware(app, **options)
    return _LastResort(app)


class StreamEncoder(Protocol):
    def start(self) -> bytes: ...

    def chunk(self, chunk: ChatChunk) -> bytes: ...

    def finish(
        self,
        finish_reason: str,
        usage: Usage,
        sources: list[dict[str, Any]] | None,
        continued: dict[str, Any] | None = None,
    ) -> bytes: ...

    def error(self, error: GatewayError) -> bytes: ...


class Wire(Protocol):
    """One protocol's request parsing and response encoding; the flow between is shared."""

    path: str

    def parse(self, body: bytes) -> ChatRequest: ...

    def body(self, result: ChatResult, model: str) -> dict[str, Any]: ...

    def encoder(self, chat: ChatRequest, model: str) -> StreamEncoder: ...

    def error_body(self, error: GatewayError) -> dict[str, Any]: ...


class _OpenAIWire:
    path = "/v1/chat/completions"

    def parse(self, body: bytes) -> ChatRequest:
        return parse(ChatRequest, body)

    def body(self, result: ChatResult, model: str) -> dict[str, Any]:
        return completion_body(
            result, completion_id=_id("chatcmpl-"), created=int(time.time()), model=model
        )

    def encoder(self, chat: ChatRequest, model: str) -> StreamEncoder:
        return ChunkEncoder(
            completion_id=_id("chatcmpl-"),
            created=int(time.time()),
            model=model,
            include_usage=chat.wants_stream_usage,
        )

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return openai_error_body(error)


class _AnthropicWire:
    path = "/v1/messages"

    def parse(self, body: bytes) -> ChatRequest:
        request = parse(anthropic_wire.MessagesRequest, body)
        try:
            return anthropic_wire.to_chat_request(request)
        except (AttributeError, TypeError, ValueError) as exc:
            # A content block of the wrong shape (an image `source` given as a string, a
            # `tool_result` holding a number): the caller's to fix, whatever tripped on it.
            raise bad_request(
                "Invalid request: messages: a content block has the wrong shape"
                f" ({type(exc).__name__})",
                param="messages",
            ) from None

    def body(self, result: ChatResult, model: str) -> dict[str, Any]:
        return anthropic_wire.to_messages_response(result, model=model, message_id=_id("msg_"))

    def encoder(self, chat: ChatRequest, model: str) -> StreamEncoder:
        prompt_chars = sum(len(m.text()) for m in chat.messages)
        return anthropic_wire.MessagesStreamEncoder(
            model=model, message_id=_id("msg_"), input_tokens=prompt_chars // 4
        )

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return anthropic_wire.anthropic_error_body(error.status, error.message)


OPENAI: Wire = _OpenAIWire()
ANTHROPIC: Wire = _AnthropicWire()


def _sse(
    wire: Wire,
    chat: ChatRequest,
    chunks: AsyncIterator[ChatChunk],
    ctx: RequestContext,
    started: float,
) -> Response:
    encoder = wire.encoder(chat, _model(ctx))

    async def frames() -> AsyncIterator[bytes]:
        # The opening frame goes out with the first chunk's, which is already here: one write.
        head = encoder.start()
        try:
            async for chunk in chunks:
                frame = encoder.chunk(chunk)
                if head:
                    frame, head = head + frame, b""
                if frame:
                    yield frame
                if chunk.finish_reason:
                    usage = chunk.usage or ctx.usage
                    yield encoder.finish(chunk.finish_reason, usage, chunk.sources, ctx.continued)
            if head:
                yield head
        except Exception as exc:
            if ctx.outcome == "ok":
                ctx.outcome = "stream_failed"
            yield head + encoder.error(to_gateway_error(exc, ctx.request_id))
        finally:
            log_request(_fields(wire.path, ctx, 200, stream=True), started)

    return _EventStream(frames(), ctx.headers())


class _EventStream(StreamingResponse):
    """Starlette's streaming response, the client's leaving watched by one plain asyncio task.

    Under an ASGI server older than spec 2.4 (uvicorn says 2.3) Starlette runs the stream in
    a task of an anyio task group while the request's task listens for the disconnect: a task
    hop before the first byte and anyio's cancel scopes around every stream. Here the stream
    runs in the request's own task and a watcher cancels it if the client goes, which ends it
    the same way (the frames' `finally` logs it, the upstream is closed).

    Its head is put together directly, as Starlette's would be (the same headers, in the same
    order), without the generic checks of a response that may have a body, a length or
    another type: this is on the way to a stream's first byte."""

    def __init__(self, frames: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        self.body_iterator = frames
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            *_SSE_HEAD,
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ),
            _SSE_TYPE,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        if streaming is None:  # not under asyncio: Starlette's own way
            await super().__call__(scope, receive, send)
            return
        gone = False

        async def watch() -> None:
            nonlocal gone
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            except Exception:
                return  # nothing more to hear from the server; the stream goes on
            gone = True
            streaming.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not gone:
                raise
            streaming.uncancel()
        finally:
            watcher.cancel()
        if self.background is not None:
            await self.background()


def _error_response(request: Request, error: GatewayError, ctx: RequestContext) -> Response:
    if ctx.outcome == "ok":
        ctx.outcome = error.code or error.type
    headers = {**ctx.headers(), **error.headers}
    return json_response(_wire_for(request.url.path).error_body(error), error.status, headers)


def _failure(request: Request, exc: Exception, ctx: RequestContext) -> Response:
    return _error_response(request, to_gateway_error(exc, ctx.request_id), ctx)


def _wire_for(path: str) -> Wire:
    return ANTHROPIC if path.startswith(ANTHROPIC.path) else OPENAI


class _BoundedBodies:
    """Every route's body is held to `max_body_bytes` (the admin routes too), refused as soon
    as it is known to be over; the chat routes, which read theirs with the same limit, are
    passed through untouched."""

    def __init__(self, app: ASGIApp, limit: int, own_limit: tuple[str, ...]) -> None:
        self.app = app
        self._limit = limit
        self._own = own_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._own:
            await self.app(scope, receive, send)
            return
        limit = self._limit
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                request = Request(scope)
                error = body_too_large(limit)
                response = _error_response(request, error, RequestContext(request_id(request)))
                await response(scope, receive, send)
                return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise body_too_large(limit)
            return message

        await self.app(scope, bounded, send)


class _LastResort:
    """Whatever a route lets escape becomes a 500 in the protocol's envelope, with the request
    id, and is logged here without its message (which may quote the request). Nothing is
    re-raised: the server's own error line would print the exception's message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            request = Request(scope)
            ctx = RequestContext(request_id(request))
            error = to_gateway_error(exc, ctx.request_id)
            if not started:
                await _error_response(request, error, ctx)(scope, receive, send)


def _logged_after_sending(
    response: Response, fields: dict[str, object], started: float
) -> Response:
    """The access line is written once the answer is on its way, so the caller never waits
    for it; its `ms` includes the sending."""

    async def log() -> None:
        log_request(fields, started)

    response.background = BackgroundTask(log)
    return response


def _fields(
    path: str, ctx: RequestContext, status: int, *, stream: bool = False
) -> dict[str, object]:
    return {
        "request_id": ctx.request_id,
        "path": path,
        "status": status,
        "outcome": ctx.outcome,
        "tenant": ctx.tenant.id if ctx.tenant else None,
        "alias": ctx.alias,
        "tier": ctx.tier,
        "tier_reason": ctx.tier_reason,
        "model": ctx.model,
        "attempts": ctx.attempts,
        "prompt_tokens": ctx.usage.prompt_tokens,
        "completion_tokens": ctx.usage.completion_tokens,
        "stream": stream,
        "cache": ctx.cache,
        "cache_read_tokens": ctx.usage.cache_read_tokens,
        "cache_write_tokens": ctx.usage.cache_write_tokens,
        "cached_usage": (ctx.cached_usage.prompt_tokens, ctx.cached_usage.completion_tokens)
        if ctx.cached_usage
        else None,
        "first_token_ms": round(ctx.first_token_s * 1000, 2) if ctx.first_token_s else None,
        "overhead_ms": round(_overhead_ms(ctx), 2),
    }


def _overhead_ms(ctx: RequestContext) -> float:
    """The gateway's own time; for a stream, up to its first token (the rest is relaying)."""
    if ctx.first_token_s is None:
        return ctx.overhead_ms
    return (ctx.first_token_s - ctx.upstream_s) * 1000


def _conversations(container: Container) -> ResponseStore:
    if container.responses is None:
        raise GatewayError(404, "The Responses API is not configured.", code="not_found")
    return container.responses


def _model(ctx: RequestContext) -> str:
    return (ctx.model or "").partition("/")[2] or ctx.alias or "unknown"


def _id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()
