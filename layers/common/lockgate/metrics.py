"""Request metrics: Prometheus text at `/metrics` locally, CloudWatch EMF lines in Lambda.

Both adapters take the request's access-log fields once it is done (the same facts the log line
has), so the hot path pays one call and a few dictionary updates. Labels are bounded: routes
and aliases come from the code and the policy, and only the first `max_tenants` tenants seen
get a label of their own; the rest are counted as `other`.
"""

from __future__ import annotations

import bisect
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lockgate.limits.pricing import cost_usd
from lockgate.policy import Price

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
OVERHEAD_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
OTHER = "other"


class Metrics(Protocol):
    def observe(self, fields: Mapping[str, Any]) -> None:
        """One finished request, from its access-log fields."""
        ...


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def request_cost(prices: Mapping[str, Price], fields: Mapping[str, Any]) -> float:
    return cost_usd(
        prices,
        fields.get("model"),
        int(fields.get("prompt_tokens") or 0),
        int(fields.get("completion_tokens") or 0),
        cache_read_tokens=int(fields.get("cache_read_tokens") or 0),
        cache_write_tokens=int(fields.get("cache_write_tokens") or 0),
    )


def cache_savings(prices: Mapping[str, Price], fields: Mapping[str, Any]) -> float:
    """What a cache hit would have cost at the target that produced the cached answer."""
    saved = fields.get("cached_usage")
    if not saved or fields.get("cache") not in ("exact", "semantic"):
        return 0.0
    return cost_usd(prices, fields.get("model"), int(saved[0]), int(saved[1]))


class _Histogram:
    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value


LABELS: dict[str, tuple[str, ...]] = {
    "lockgate_requests_total": ("route", "alias", "tenant", "status_class", "cache"),
    "lockgate_request_duration_seconds": ("route", "alias"),
    "lockgate_overhead_seconds": ("route",),
    "lockgate_time_to_first_token_seconds": ("alias",),
    "lockgate_tokens_total": ("alias", "tenant", "kind"),
    "lockgate_cost_usd_total": ("alias", "tenant"),
    "lockgate_cache_hits_total": ("alias", "kind"),
    "lockgate_cache_savings_usd_total": ("alias",),
    "lockgate_fallbacks_total": ("alias",),
    "lockgate_limit_rejections_total": ("tenant", "reason"),
    "lockgate_errors_total": ("alias", "status_class"),
}
"""Each metric's label names; series are keyed by the values alone, in this order."""
_TOKEN_KINDS = (
    ("input", "prompt_tokens"),
    ("output", "completion_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
)


class PrometheusMetrics:
    """In-process counters and histograms, rendered in Prometheus' text format."""

    def __init__(self, prices: Mapping[str, Price], *, max_tenants: int = 20) -> None:
        self._prices = prices
        self._max_tenants = max_tenants
        self._tenants: set[str] = set()
        self._counters: dict[str, dict[tuple[str, ...], float]] = {
            name: {} for name in LABELS if name.endswith("_total")
        }
        self._histograms: dict[str, dict[tuple[str, ...], _Histogram]] = {
            name: {} for name in LABELS if not name.endswith("_total")
        }

    def _tenant(self, tenant: Any) -> str:
        if not tenant:
            return "none"
        if tenant in self._tenants:
            return str(tenant)
        if len(self._tenants) < self._max_tenants:
            self._tenants.add(tenant)
            return str(tenant)
        return OTHER

    def _add(self, name: str, key: tuple[str, ...], amount: float = 1.0) -> None:
        series = self._counters[name]
        series[key] = series.get(key, 0.0) + amount

    def _time(
        self, name: str, key: tuple[str, ...], value: float, buckets: tuple[float, ...]
    ) -> None:
        series = self._histograms[name]
        histogram = series.get(key)
        if histogram is None:
            histogram = series[key] = _Histogram(buckets)
        histogram.observe(value)

    def observe(self, fields: Mapping[str, Any]) -> None:
        alias = fields.get("alias") or "none"
        tenant = self._tenant(fields.get("tenant"))
        status = fields.get("status") or 0
        route = fields.get("path") or ""
        cache = fields.get("cache") or "none"
        klass = status_class(status)
        self._add("lockgate_requests_total", (route, alias, tenant, klass, cache))
        self._time(
            "lockgate_request_duration_seconds",
            (route, alias),
            (fields.get("ms") or 0) / 1000,
            LATENCY_BUCKETS_S,
        )
        if (overhead := fields.get("overhead_ms")) is not None:
            self._time("lockgate_overhead_seconds", (route,), overhead / 1000, OVERHEAD_BUCKETS_S)
        if (first_token := fields.get("first_token_ms")) is not None:
            self._time(
                "lockgate_time_to_first_token_seconds",
                (alias,),
                first_token / 1000,
                LATENCY_BUCKETS_S,
            )
        for kind, key in _TOKEN_KINDS:
            if count := fields.get(key):
                self._add("lockgate_tokens_total", (alias, tenant, kind), count)
        if fields.get("model") in self._prices and (cost := request_cost(self._prices, fields)):
            self._add("lockgate_cost_usd_total", (alias, tenant), cost)
        if cache in ("exact", "semantic"):
            self._add("lockgate_cache_hits_total", (alias, cache))
            if saved := cache_savings(self._prices, fields):
                self._add("lockgate_cache_savings_usd_total", (alias,), saved)
        attempts = fields.get("attempts") or 0
        if attempts > 1:
            self._add("lockgate_fallbacks_total", (alias,), attempts - 1)
        if status >= 400:
            if status == 429:
                reason = fields.get("outcome") or "rate_limited"
                self._add("lockgate_limit_rejections_total", (tenant, reason))
            self._add("lockgate_errors_total", (alias, klass))

    def render(self) -> bytes:
        lines: list[str] = []
        for name, series in sorted(self._counters.items()):
            lines.append(f"# TYPE {name} counter")
            names = LABELS[name]
            lines.extend(f"{name}{_labels(names, key)} {_number(v)}" for key, v in series.items())
        for name, histograms in sorted(self._histograms.items()):
            lines.append(f"# TYPE {name} histogram")
            names = LABELS[name]
            for key, h in histograms.items():
                running = 0
                for bound, count in zip((*h.buckets, math.inf), h.counts, strict=True):
                    running += count
                    le = "+Inf" if bound == math.inf else _number(bound)
                    labels = _labels((*names, "le"), (*key, le))
                    lines.append(f"{name}_bucket{labels} {running}")
                lines.append(f"{name}_sum{_labels(names, key)} {_number(h.sum)}")
                lines.append(f"{name}_count{_labels(names, key)} {running}")
        return ("\n".join(lines) + "\n").encode()


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in zip(names, values, strict=True))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


NAMESPACE = "Lockgate"


class EmfMetrics:
    """CloudWatch embedded metric format: one JSON line per request on stdout, which Lambda's
    log pipeline turns into metrics in the `Lockgate` namespace (names shared with the
    dashboard). Errors carry a `status_class` dimension and cache hits a `kind` one."""

    def __init__(
        self,
        prices: Mapping[str, Price],
        *,
        write: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._prices = prices
        self._write = write or _stdout
        self._clock = clock

    def observe(self, fields: Mapping[str, Any]) -> None:
        status = int(fields.get("status") or 0)
        cache = fields.get("cache")
        doc: dict[str, Any] = {
            "alias": str(fields.get("alias") or "none"),
            "Requests": 1,
            "InputTokens": int(fields.get("prompt_tokens") or 0),
            "OutputTokens": int(fields.get("completion_tokens") or 0),
            "CostUSD": request_cost(self._prices, fields),
            "Fallbacks": max(0, int(fields.get("attempts") or 0) - 1),
            "LimitRejections": 1 if status == 429 else 0,
        }
        metrics = [
            {"Name": "Requests", "Unit": "Count"},
            {"Name": "InputTokens", "Unit": "Count"},
            {"Name": "OutputTokens", "Unit": "Count"},
            {"Name": "CostUSD", "Unit": "None"},
            {"Name": "Fallbacks", "Unit": "Count"},
            {"Name": "LimitRejections", "Unit": "Count"},
        ]
        if fields.get("first_token_ms") is not None:
            doc["FirstTokenLatency"] = float(fields["first_token_ms"])
            metrics.append({"Name": "FirstTokenLatency", "Unit": "Milliseconds"})
        directives: list[dict[str, Any]] = [
            {"Namespace": NAMESPACE, "Dimensions": [["alias"], []], "Metrics": metrics}
        ]
        if status >= 400:
            doc["status_class"], doc["Errors"] = status_class(status), 1
            directives.append(
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["alias", "status_class"]],
                    "Metrics": [{"Name": "Errors", "Unit": "Count"}],
                }
            )
        if cache in ("exact", "semantic"):
            doc["kind"], doc["CacheHits"] = cache, 1
            doc["CacheSavingsUSD"] = cache_savings(self._prices, fields)
            directives.append(
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["alias", "kind"]],
                    "Metrics": [{"Name": "CacheHits", "Unit": "Count"}],
                }
            )
            metrics.append({"Name": "CacheSavingsUSD", "Unit": "None"})
        doc["_aws"] = {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": directives}
        self._write(json.dumps(doc, separators=(",", ":")) + "\n")


def _stdout(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()
