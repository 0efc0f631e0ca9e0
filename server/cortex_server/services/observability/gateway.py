"""The gateway's own metrics, fed from the usage row each proxied request already produces.

Why from the row: the row is made once per request in a `finally` (streams and
cancellations included), so hooking there adds no layer to the hot path. Why plain
numbers instead of prometheus-client's Counter/Histogram for the per-request series:
those take a lock per increment (about 1 µs each, and a request touches six), while
every per-request update here runs on the one event loop thread, so `+= 1` on a
slot is enough; a collector turns them into families at scrape time (copying lists
and dicts is atomic under the GIL). Rarer events (rejections, retries, upstream
errors) use prometheus-client directly. The bench measures the cost:
`bench/metrics_overhead_bench.py`.

Cardinality is bounded by construction: `model` is a served name the registry knows
(a row exists only after `registry.require`), `route` is one of three endpoint names,
status is a class (2xx … 5xx), replica keys come from the supervisor. No key, user or
request id is ever a label.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# LLM calls take from milliseconds (embeddings, cached prompts) to minutes (long generations).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RATE_LIMIT_KINDS = ("requests", "tokens", "concurrency")


class _Hist:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class _Cell:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "other"


class GatewayMetrics(Collector):
    """The gateway's metrics; registers itself (the per-request series) and its counters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # per-request series: plain slots, exported by collect()
        self._requests: dict[tuple[str, str, str], _Cell] = {}
        self._latency: dict[tuple[str, str], _Hist] = {}
        self._ttft: dict[tuple[str, str], _Hist] = {}
        self._tokens: dict[tuple[str, str], _Cell] = {}
        self._streams: dict[str, _Cell] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        registry.register(self)
        # rarer events
        self.cancelled = Counter(
            "cortex_requests_cancelled",
            "Requests whose client left before the end (metered as status 499).",
            ["route", "model"],
            registry=registry,
        )
        self.auth_rejections = Counter(
            "cortex_auth_rejections",
            "Requests refused by authentication (401) or authorization (403), by reason code.",
            ["status", "reason"],
            registry=registry,
        )
        self.ratelimit_rejections = Counter(
            "cortex_ratelimit_rejections",
            "Requests refused with 429, by the limit that refused them.",
            ["kind"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "cortex_upstream_errors",
            "Engine failures seen by the gateway: connect (refused, reset, or 503 with another replica"
            " to try; counted by the breaker) and timeout.",
            ["model", "replica", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "cortex_upstream_retries",
            "Requests sent again (same replica after a stale connection, or the next one).",
            ["model"],
            registry=registry,
        )
        for kind in RATE_LIMIT_KINDS:
            self.ratelimit_rejections.labels(kind)  # present at 0 from the start

    # ---- per request (the hot path, on the event loop) ----------------------------------
    def observe(self, row: dict[str, Any]) -> None:
        """Record one usage row (see metering.CallMeter.row)."""
        code = row["status_code"]
        key = (row["endpoint"], row["model"], code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._make_children(*key)
        requests, latency, ttft, prompt, completion = children
        requests.value += 1
        latency.observe(row["latency_ms"] / 1000.0)
        ttft_ms = row["ttft_ms"]
        if ttft_ms is not None:
            ttft.observe(ttft_ms / 1000.0)
        prompt.value += row["prompt_tokens"]
        completion.value += row["completion_tokens"]
        if row["streamed"] and ttft_ms is not None:  # the relay had started: stream_opened() ran
            self._stream_cell(row["model"]).value -= 1
        if row["cancelled"]:
            self.cancelled.labels(row["endpoint"], row["model"]).inc()
        if code == 504 and row["replica"]:
            self.upstream_errors.labels(row["model"], row["replica"], "timeout").inc()

    def _make_children(self, route: str, model: str, code: int) -> tuple[Any, ...]:
        def get(table: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
            if key not in table:
                table[key] = make()
            return table[key]

        return (
            get(self._requests, (route, model, status_class(code)), _Cell),
            get(self._latency, (route, model), lambda: _Hist(LATENCY_BUCKETS)),
            get(self._ttft, (route, model), lambda: _Hist(TTFT_BUCKETS)),
            get(self._tokens, (model, "prompt"), _Cell),
            get(self._tokens, (model, "completion"), _Cell),
        )

    def _stream_cell(self, model: str) -> _Cell:
        cell = self._streams.get(model)
        if cell is None:
            cell = self._streams[model] = _Cell()
        return cell

    def stream_opened(self, model: str) -> None:
        self._stream_cell(model).value += 1

    # ---- scrape time ---------------------------------------------------------------------
    def describe(self) -> list[Metric]:
        return []  # no scrape at registration

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "cortex_requests",
            "Inference requests that reached an engine, by route, model and status class.",
            labels=["route", "model", "status_class"],
        )
        for labels, cell in dict(self._requests).items():
            requests.add_metric(list(labels), cell.value)
        yield requests
        yield _histogram(
            "cortex_request_duration_seconds",
            "Gateway latency of inference requests, first byte in to last byte out.",
            dict(self._latency),
        )
        yield _histogram(
            "cortex_time_to_first_token_seconds",
            "Time to the first streamed byte from the engine (streaming requests).",
            dict(self._ttft),
        )
        tokens = CounterMetricFamily(
            "cortex_tokens",
            "Tokens metered, by model and kind (prompt, completion).",
            labels=["model", "kind"],
        )
        for model_kind, cell in dict(self._tokens).items():
            tokens.add_metric(list(model_kind), cell.value)
        yield tokens
        streams = GaugeMetricFamily(
            "cortex_streams_in_flight", "Streaming responses being relayed now.", labels=["model"]
        )
        for model, cell in dict(self._streams).items():
            streams.add_metric([model], cell.value)
        yield streams

    # ---- rarer events ----------------------------------------------------------------
    def connect_error(self, model: str, replica: str) -> None:
        self.upstream_errors.labels(model, replica, "connect").inc()

    def retry(self, model: str) -> None:
        self.retries.labels(model).inc()

    def rejected(self, status: int, reason: str | None, *, limit_kind: str | None = None) -> None:
        if status == 429:
            kind = limit_kind if limit_kind in RATE_LIMIT_KINDS else "other"
            self.ratelimit_rejections.labels(kind).inc()
        else:
            self.auth_rejections.labels(str(status), reason or "unknown").inc()


def _histogram(name: str, doc: str, series: dict[tuple[str, str], _Hist]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["route", "model"])
    for labels, hist in series.items():
        counts, total = list(hist.counts), hist.sum
        cumulative, buckets = 0, []
        for bound, n in zip((*hist.bounds, float("inf")), counts, strict=True):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]  # unannotated
        family.add_metric(list(labels), buckets, total)
    return family


def observing_sink(
    metrics: GatewayMetrics | None, sink: Callable[[dict[str, Any]], None]
) -> Callable[[dict[str, Any]], None]:
    """The gateway's usage sink: metrics first (in memory), then the batch writer."""
    if metrics is None:
        return sink
    observe = metrics.observe

    def both(row: dict[str, Any]) -> None:
        try:
            observe(row)
        finally:
            sink(row)

    return both
