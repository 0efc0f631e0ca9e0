"""The gateway's own metrics, fed from the usage row each proxied request already produces.

Why from the row: the row is made once per request in a `finally` (streams and
cancellations included), so hooking there adds no layer to the hot path. The label
children are cached per (route, model, status class): after the first request of a
kind, observing one is a dict lookup and five lock-protected additions (the bench
measures it: `bench/gateway_bench.py --metrics-overhead`).

Cardinality is bounded by construction: `model` is a served name the registry knows
(a row exists only after `registry.require`), `route` is one of three endpoint names,
status is a class (2xx … 5xx), replica keys come from the supervisor. No key, user or
request id is ever a label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# LLM calls take from milliseconds (embeddings, cached prompts) to minutes (long generations).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RATE_LIMIT_KINDS = ("requests", "tokens", "concurrency")


def status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "other"


class GatewayMetrics:
    """The gateway's counters and histograms, registered in the daemon's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "cortex_requests",
            "Inference requests that reached an engine, by route, model and status class.",
            ["route", "model", "status_class"],
            registry=registry,
        )
        self.cancelled = Counter(
            "cortex_requests_cancelled",
            "Requests whose client left before the end (metered as status 499).",
            ["route", "model"],
            registry=registry,
        )
        self.latency = Histogram(
            "cortex_request_duration_seconds",
            "Gateway latency of inference requests, first byte in to last byte out.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "cortex_time_to_first_token_seconds",
            "Time to the first streamed byte from the engine (streaming requests).",
            ["route", "model"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "cortex_tokens", "Tokens metered, by model and kind (prompt, completion).", ["model", "kind"],
            registry=registry,
        )  # fmt: skip
        self.streams = Gauge(
            "cortex_streams_in_flight", "Streaming responses being relayed now.", ["model"], registry=registry
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
            "Engine failures seen by the gateway: connect/reset (counted by the breaker) and timeouts.",
            ["model", "replica", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "cortex_upstream_retries",
            "Requests sent again (same replica after a stale connection, or the next one).",
            ["model"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        for kind in RATE_LIMIT_KINDS:
            self.ratelimit_rejections.labels(kind)  # present at 0 from the start

    # ---- per request (the hot path) ----------------------------------------------------
    def observe(self, row: dict[str, Any]) -> None:
        """Record one usage row (see metering.CallMeter.row)."""
        code = row["status_code"]
        key = (row["endpoint"], row["model"], code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._make_children(*key)
        requests, latency, ttft, prompt, completion = children
        requests.inc()
        latency.observe(row["latency_ms"] / 1000.0)
        ttft_ms = row["ttft_ms"]
        if ttft_ms is not None:
            ttft.observe(ttft_ms / 1000.0)
        if row["prompt_tokens"]:
            prompt.inc(row["prompt_tokens"])
        if row["completion_tokens"]:
            completion.inc(row["completion_tokens"])
        if row["streamed"] and ttft_ms is not None:  # the relay had started: stream_opened() ran
            self.streams.labels(row["model"]).dec()
        if row["cancelled"]:
            self.cancelled.labels(row["endpoint"], row["model"]).inc()
        if code == 504 and row["replica"]:
            self.upstream_errors.labels(row["model"], row["replica"], "timeout").inc()

    def _make_children(self, route: str, model: str, code: int) -> tuple[Any, ...]:
        return (
            self.requests.labels(route, model, status_class(code)),
            self.latency.labels(route, model),
            self.ttft.labels(route, model),
            self.tokens.labels(model, "prompt"),
            self.tokens.labels(model, "completion"),
        )

    def stream_opened(self, model: str) -> None:
        self.streams.labels(model).inc()

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
