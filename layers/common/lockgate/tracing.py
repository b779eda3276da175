"""OpenTelemetry traces with the GenAI semantic conventions, exported over OTLP/HTTP.

Off unless `LOCKGATE_OTLP_ENDPOINT` is set, and then switched on by wrapping, not by checks on
the hot path: a server span per request (an ASGI middleware), a client span per upstream
attempt (each chat and embeddings provider wrapped), and spans around the cache lookup and
store and around retrieval. With tracing off none of these wrappers exist, so the request path
is unchanged. The OpenTelemetry SDK and exporter are the `otel` extra.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from lockgate.chat import ChatChunk, ChatRequest, ChatResult, Usage
from lockgate.observability import add_request_sink
from lockgate.providers.base import Provider
from lockgate.providers.embeddings import EmbeddingProvider, Embeddings, Inputs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from lockgate.bootstrap import Container

PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "bedrock": "aws.bedrock"}


def enable_tracing(
    container: Container, endpoint: str, *, exporter: SpanExporter | None = None
) -> Callable[[], object]:
    """Instruments the container's gateway; returns the function that flushes and stops."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "lockgate"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        url = url if url.endswith("/v1/traces") else url + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("lockgate")
    kinds = {name: config.kind for name, config in container.policy.providers.items()}
    for name, upstream in list(container.providers.items()):
        container.providers[name] = TracedProvider(upstream, tracer, kinds[name])
    if container.embeddings is not None:
        adapters = container.embeddings.providers
        for name, adapter in list(adapters.items()):
            adapters[name] = TracedEmbeddings(adapter, tracer, kinds.get(name, name))
    container.middleware.append((TraceRequests, {"tracer": tracer}))
    container.starters.append(lambda: _instrument_stores(container, tracer))
    remove_sink = add_request_sink(_annotate_request)

    def stop() -> None:
        remove_sink()
        provider.shutdown()

    return stop


async def _instrument_stores(container: Container, tracer: Tracer) -> None:
    """Spans around the cache and retrieval, once the gateway has them (RAG connects late)."""
    gateway = container.gateway
    if gateway.cache is not None:
        _wrap(gateway.cache, "lookup", tracer, "cache lookup", _cache_result)
        _wrap(gateway.cache, "store", tracer, "cache store")
    if gateway.rag is not None:
        _wrap(gateway.rag.retriever, "retrieve", tracer, "retrieval", _retrieved)


def _wrap(
    target: object,
    method: str,
    tracer: Tracer,
    name: str,
    describe: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    inner: Callable[..., Awaitable[Any]] = getattr(target, method)

    @functools.wraps(inner)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL) as span:
            result = await inner(*args, **kwargs)
            if describe is not None:
                span.set_attributes(describe(result))
            return result

    setattr(target, method, traced)


def _cache_result(found: Any) -> dict[str, Any]:
    return {"lockgate.cache.result": getattr(found, "kind", "miss")}


def _retrieved(chunks: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "retrieval", "lockgate.retrieval.chunks": len(chunks)}


def _annotate_request(fields: dict[str, Any]) -> None:
    """The request's outcome on its server span (current while the access line is written)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes = {
        "lockgate.tenant": fields.get("tenant"),
        "lockgate.alias": fields.get("alias"),
        "lockgate.tier": fields.get("tier"),
        "lockgate.cache": fields.get("cache"),
        "lockgate.target": fields.get("model"),
        "lockgate.attempts": fields.get("attempts"),
        "lockgate.outcome": fields.get("outcome"),
        "gen_ai.usage.input_tokens": fields.get("prompt_tokens"),
        "gen_ai.usage.output_tokens": fields.get("completion_tokens"),
    }
    span.set_attributes({k: v for k, v in attributes.items() if v is not None})


class TraceRequests:
    """Pure ASGI middleware: one server span per HTTP request, current for the whole of it
    (streamed bodies included), so attempt and cache spans become its children."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self._app = app
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        name = f"{scope['method']} {scope['path']}"
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self._app(scope, receive, traced_send)


class TracedProvider:
    """A provider whose every call is a GenAI client span (`chat <model>`)."""

    def __init__(self, inner: Provider, tracer: Tracer, kind: str) -> None:
        self.name = inner.name
        self._inner = inner
        self._tracer = tracer
        self._system = PROVIDER_NAMES.get(kind, kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _start(self, request: ChatRequest, model: str) -> trace.Span:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self._system,
            "gen_ai.request.model": model,
        }
        for key, value in (
            ("gen_ai.request.max_tokens", request.output_limit),
            ("gen_ai.request.temperature", request.temperature),
            ("gen_ai.request.top_p", request.top_p),
        ):
            if value is not None:
                attributes[key] = value
        return self._tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)

    @staticmethod
    def _finish(span: trace.Span, model: str, finish_reason: str, usage: Usage | None) -> None:
        span.set_attribute("gen_ai.response.model", model)
        span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)

    @staticmethod
    def _failed(span: trace.Span, exc: BaseException) -> None:
        span.set_attribute("error.type", getattr(exc, "code", type(exc).__name__))
        span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))

    async def complete(self, request: ChatRequest, model: str) -> ChatResult:
        span = self._start(request, model)
        try:
            with trace.use_span(span, end_on_exit=False):
                result = await self._inner.complete(request, model)
            self._finish(span, model, result.finish_reason, result.usage)
            return result
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            span.end()

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[ChatChunk]:
        span = self._start(request, model)
        try:
            async for chunk in self._inner.stream(request, model):
                if chunk.finish_reason:
                    self._finish(span, model, chunk.finish_reason, chunk.usage)
                yield chunk
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            span.end()

    async def aclose(self) -> None:
        await self._inner.aclose()


class TracedEmbeddings:
    """An embeddings provider whose every call is a GenAI client span (`embeddings <model>`)."""

    def __init__(self, inner: EmbeddingProvider, tracer: Tracer, kind: str) -> None:
        self._inner = inner
        self._tracer = tracer
        self._system = PROVIDER_NAMES.get(kind, kind)

    async def embed(self, inputs: Inputs, model: str, dimensions: int | None) -> Embeddings:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": self._system,
            "gen_ai.request.model": model,
        }
        if dimensions is not None:
            attributes["gen_ai.embeddings.dimension.count"] = dimensions
        with self._tracer.start_as_current_span(
            f"embeddings {model}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                result = await self._inner.embed(inputs, model, dimensions)
            except BaseException as exc:
                TracedProvider._failed(span, exc)
                raise
            span.set_attribute("gen_ai.usage.input_tokens", result.prompt_tokens)
            if result.vectors:
                span.set_attribute("gen_ai.embeddings.dimension.count", len(result.vectors[0]))
            return result
