"""Request metrics from access-log fields: Prometheus text and CloudWatch EMF documents."""

from __future__ import annotations

import json
from typing import Any

from lockgate.metrics import EmfMetrics, PrometheusMetrics
from lockgate.policy import Price

PRICES = {"an/claude": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)}


def fields(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "path": "/v1/messages",
        "status": 200,
        "outcome": "ok",
        "tenant": "acme",
        "alias": "smart",
        "model": "an/claude",
        "attempts": 1,
        "prompt_tokens": 1_100,
        "completion_tokens": 100,
        "cache_read_tokens": 1_000,
        "cache_write_tokens": 0,
        "cache": "miss",
        "cached_usage": None,
        "first_token_ms": 120.0,
        "overhead_ms": 1.5,
        "ms": 900.0,
    }
    return base | overrides


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one series of `name` whose labels include `labels`."""
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in\n{text}")


def test_prometheus_counts_tokens_cost_cache_and_latency() -> None:
    metrics = PrometheusMetrics(PRICES)
    metrics.observe(fields())
    metrics.observe(
        fields(
            cache="exact",
            cached_usage=(1_100, 100),
            prompt_tokens=0,
            completion_tokens=0,
            cache_read_tokens=0,
            first_token_ms=None,
        )
    )
    refused = {"prompt_tokens": 0, "completion_tokens": 0, "cache_read_tokens": 0}
    metrics.observe(
        fields(status=429, outcome="rate_limit_exceeded", model=None, attempts=0, **refused)
    )
    metrics.observe(fields(attempts=3, status=502, outcome="upstream_error"))
    text = metrics.render().decode()

    assert sample(text, "lockgate_requests_total", cache="exact", status_class="2xx") == 1
    assert sample(text, "lockgate_tokens_total", kind="cache_read", tenant="acme") == 2_000
    # 100 fresh x $3 + 1,000 cached x $0.30 + 100 out x $15, per million; twice (200 and 502).
    assert sample(text, "lockgate_cost_usd_total", alias="smart") == 2 * 0.0021
    assert sample(text, "lockgate_cache_hits_total", kind="exact") == 1
    assert sample(text, "lockgate_cache_savings_usd_total") > 0
    assert sample(text, "lockgate_limit_rejections_total", reason="rate_limit_exceeded") == 1
    assert sample(text, "lockgate_fallbacks_total", alias="smart") == 2
    assert sample(text, "lockgate_errors_total", status_class="5xx") == 1
    assert sample(text, "lockgate_time_to_first_token_seconds_count") == 3
    assert sample(text, "lockgate_time_to_first_token_seconds_bucket", le="0.25") == 3
    assert sample(text, "lockgate_time_to_first_token_seconds_bucket", le="0.1") == 0
    assert sample(text, "lockgate_request_duration_seconds_count", route="/v1/messages") == 4
    assert "# TYPE lockgate_overhead_seconds histogram" in text


def test_tenant_labels_are_bounded() -> None:
    metrics = PrometheusMetrics({}, max_tenants=2)
    for tenant in ("a", "b", "c", "d", "a"):
        metrics.observe(fields(tenant=tenant))
    text = metrics.render().decode()
    tenants = {
        line.split('tenant="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("lockgate_requests_total")
    }
    assert tenants == {"a", "b", "other"}
    assert sample(text, "lockgate_requests_total", tenant="a") == 2
    assert sample(text, "lockgate_requests_total", tenant="other") == 2


def test_emf_documents_use_the_dashboard_names() -> None:
    lines: list[str] = []
    metrics = EmfMetrics(PRICES, write=lines.append, clock=lambda: 1_800_000_000.0)
    metrics.observe(fields(attempts=2))
    metrics.observe(fields(status=503, outcome="upstream_unavailable", first_token_ms=None))
    metrics.observe(fields(cache="semantic", cached_usage=(1_000, 50), prompt_tokens=0))
    docs = [json.loads(line) for line in lines]

    first = docs[0]
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert first["_aws"]["Timestamp"] == 1_800_000_000_000
    # Per alias, and summed over all aliases: what the stack's alarms read.
    assert directive["Namespace"] == "Lockgate" and directive["Dimensions"] == [["alias"], []]
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {
        "Requests",
        "InputTokens",
        "OutputTokens",
        "CostUSD",
        "Fallbacks",
        "LimitRejections",
        "FirstTokenLatency",
    }
    assert (first["alias"], first["Fallbacks"], first["FirstTokenLatency"]) == ("smart", 1, 120.0)
    assert first["CostUSD"] == 0.0021

    errors = docs[1]["_aws"]["CloudWatchMetrics"][1]
    assert errors["Dimensions"] == [["alias", "status_class"]]
    assert (docs[1]["Errors"], docs[1]["status_class"]) == (1, "5xx")

    hits = docs[2]["_aws"]["CloudWatchMetrics"][1]
    assert hits["Dimensions"] == [["alias", "kind"]] and docs[2]["kind"] == "semantic"
    assert docs[2]["CacheHits"] == 1
    assert docs[2]["CacheSavingsUSD"] == (1_000 * 3.0 + 50 * 15.0) / 1e6
    for doc in docs:  # every metric a directive names is in the document
        for d in doc["_aws"]["CloudWatchMetrics"]:
            assert all(m["Name"] in doc for m in d["Metrics"])
            assert all(dim in doc for dims in d["Dimensions"] for dim in dims)
