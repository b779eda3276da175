"""What happened, shown: `/metrics`, the overhead header and OTLP traces, on real servers.

The gateway runs on uvicorn with the mock upstream; clients are the official SDKs. Traces are
exported by the real OpenTelemetry SDK over OTLP/HTTP to a receiver on loopback that decodes
the protobuf export requests (`opentelemetry-proto`), as a collector would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.servers import RunningGateway, free_port, gateway, mock_policy


def policy(upstream: str) -> dict[str, Any]:
    return mock_policy(
        upstream,
        {
            "obs": {"targets": ["mock/gpt-obs"]},
            "obs-fallback": {"targets": ["mock/gpt-obs+status=500", "mockant/claude-obs"]},
        },
        prices={"mock/gpt-obs": {"input": 2.0, "output": 8.0}},
        retry={"attempts": 1},
    )


@pytest.fixture(scope="module")
def gw(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with gateway(policy(upstream), tmp_path_factory.mktemp("obs")) as running:
        yield running


def scrape(gw: RunningGateway) -> str:
    response = httpx.get(f"{gw.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_tokens_cost_fallbacks_and_ttft(gw: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    before = scrape(gw)
    completion = client.chat.completions.create(
        model="obs", messages=[{"role": "user", "content": "count me"}]
    )
    list(
        client.chat.completions.create(
            model="obs", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
    )
    client.chat.completions.create(
        model="obs-fallback", messages=[{"role": "user", "content": "fall back"}]
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])
    after = scrape(gw)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("lockgate_requests_total", alias="obs", status_class="2xx") == 2
    assert delta("lockgate_requests_total", route="/v1/chat/completions", status_class="4xx") == 1
    assert completion.usage is not None
    assert delta("lockgate_tokens_total", alias="obs", kind="output") >= (
        completion.usage.completion_tokens
    )
    assert delta("lockgate_cost_usd_total", alias="obs") > 0
    assert delta("lockgate_fallbacks_total", alias="obs-fallback") == 1
    assert delta("lockgate_time_to_first_token_seconds_count", alias="obs") == 1
    assert delta("lockgate_request_duration_seconds_count", alias="obs") == 2


@pytest.mark.parametrize("stream", [False, True])
def test_every_response_says_its_overhead(gw: RunningGateway, stream: bool) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="obs", messages=[{"role": "user", "content": "overhead?"}], stream=stream
    )
    overhead = float(raw.headers["x-lockgate-overhead-ms"])
    assert 0 <= overhead < 1000
    bad = httpx.post(
        f"{gw.v1}/chat/completions",
        json={"model": "obs"},
        headers={"authorization": f"Bearer {gw.api_key}"},
    )
    assert bad.status_code == 400 and float(bad.headers["x-lockgate-overhead-ms"]) >= 0
    ant = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    raw_message = ant.messages.with_raw_response.create(
        model="obs", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert float(raw_message.headers["x-lockgate-overhead-ms"]) >= 0


class Collector:
    """An OTLP/HTTP trace receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def __enter__(self) -> Collector:
        app = web.Application()
        app.router.add_post("/v1/traces", self._receive)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in span.attributes:
        v = item.value
        kind = v.WhichOneof("value")
        out[item.key] = (
            [x.string_value for x in v.array_value.values]
            if kind == "array_value"
            else getattr(v, kind)
        )
    return out


def test_traces_follow_the_genai_conventions(upstream: str, tmp_path: Path) -> None:
    traced = policy(upstream)
    traced["models"]["obs"]["cache"] = {"enabled": True, "semantic": False}
    traced["embeddings"] = {"emb": {"targets": ["mock/text-embedding-obs"]}}
    with Collector() as collector:
        endpoint = f"http://127.0.0.1:{collector.port}"
        with gateway(traced, tmp_path, otlp_endpoint=endpoint) as gw:
            client = openai.OpenAI(base_url=gw.v1, api_key=gw.api_key, max_retries=0)
            client.chat.completions.create(
                model="obs-fallback",
                messages=[{"role": "user", "content": "trace me"}],
                max_tokens=12,
            )
            list(
                client.chat.completions.create(
                    model="obs",
                    messages=[{"role": "user", "content": "trace stream"}],
                    stream=True,
                )
            )
            client.embeddings.create(model="emb", input=["first text", "second text"])
        # Closing the gateway flushes the batch exporter.
    by_name: dict[str, list[Any]] = {}
    for span in collector.spans:
        by_name.setdefault(span.name, []).append(span)
    server = [s for s in by_name["POST /v1/chat/completions"]]
    # An embeddings call is a GenAI client span under its request's span too.
    (embedded,) = by_name["embeddings text-embedding-obs"]
    (embeddings_request,) = by_name["POST /v1/embeddings"]
    assert embedded.parent_span_id == embeddings_request.span_id
    embedded_attributes = attributes(embedded)
    assert embedded_attributes["gen_ai.operation.name"] == "embeddings"
    assert embedded_attributes["gen_ai.provider.name"] == "openai"
    assert embedded_attributes["gen_ai.usage.input_tokens"] > 0
    assert embedded_attributes["gen_ai.embeddings.dimension.count"] > 0
    assert len(server) == 2
    attempts = by_name["chat gpt-obs+status=500"] + by_name["chat claude-obs"]
    first_request = (
        server[0] if attributes(server[0])["lockgate.alias"] == "obs-fallback" else server[1]
    )
    # One span per attempt, both children of the request's span, the failed one marked.
    assert {a.parent_span_id for a in attempts} == {first_request.span_id}
    failed, served = sorted(attempts, key=lambda s: s.start_time_unix_nano)
    assert failed.status.code == 2  # ERROR
    served_attributes = attributes(served)
    assert served_attributes["gen_ai.operation.name"] == "chat"
    assert served_attributes["gen_ai.provider.name"] == "anthropic"
    assert served_attributes["gen_ai.request.model"] == "claude-obs"
    assert served_attributes["gen_ai.request.max_tokens"] == 12
    assert served_attributes["gen_ai.usage.output_tokens"] > 0
    assert served_attributes["gen_ai.response.finish_reasons"] in (["stop"], ["length"])
    request_attributes = attributes(first_request)
    assert request_attributes["lockgate.attempts"] == 2
    assert request_attributes["lockgate.target"] == "mockant/claude-obs"
    assert request_attributes["http.response.status_code"] == 200
    streamed = by_name["chat gpt-obs"][0]
    assert attributes(streamed)["gen_ai.usage.output_tokens"] > 0
    assert streamed.parent_span_id in {s.span_id for s in server}
    # The cached alias's request has its cache lookup (a miss) and store as children too.
    (lookup,) = by_name["cache lookup"]
    assert attributes(lookup)["lockgate.cache.result"] == "miss"
    assert lookup.parent_span_id == streamed.parent_span_id
    assert streamed.parent_span_id in {s.parent_span_id for s in by_name["cache store"]}
