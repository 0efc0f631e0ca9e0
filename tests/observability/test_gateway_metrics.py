"""Gateway metrics fed from the usage rows: the real Gateway against MockTransport upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry

from cortex_server.core.auth import Principal
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.proxy import CHAT_COMPLETIONS, Gateway
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.observability.gateway import GatewayMetrics, observing_sink
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from tests.gateway.test_proxy import SSE, run_asgi

PRINCIPAL = Principal(kind="key", key_id=7, org_id=1, user_id=2, name="t", scopes=frozenset({"inference"}))
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
OK = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}}


def make(handler: Any, replicas: int = 2) -> tuple[Gateway, GatewayMetrics, list[dict[str, Any]]]:
    registry = ModelRegistry()
    registry.put(
        ServedModel(
            served_name="m",
            engine="llamacpp",
            state="running",
            replicas=[
                ReplicaEndpoint(
                    model_id=1, model_name="m", replica_index=i, base_url=f"http://r{i}", healthy=True
                )
                for i in range(replicas)
            ],
        )
    )
    metrics = GatewayMetrics(CollectorRegistry())
    rows: list[dict[str, Any]] = []
    gw = Gateway(
        registry=registry,
        clients=UpstreamClients(max_connections=8, transport=httpx.MockTransport(handler)),
        balancer=ReplicaBalancer(policy="round_robin", failure_threshold=5, cooldown_s=60, metrics=metrics),
        usage=observing_sink(metrics, rows.append),
        metrics=metrics,
    )
    return gw, metrics, rows


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def forward(gw: Gateway, payload: dict[str, Any]) -> Any:
    raw = orjson.dumps(payload)
    return await gw.forward(
        endpoint=CHAT_COMPLETIONS, payload=orjson.loads(raw), raw=raw, principal=PRINCIPAL
    )


async def test_requests_tokens_and_latency_match_the_usage_rows() -> None:
    gw, metrics, rows = make(lambda r: httpx.Response(200, json=OK))
    for _ in range(3):
        assert (await forward(gw, CHAT)).status_code == 200
    gw_bad, _, _ = gw, None, None
    gw.clients = UpstreamClients(
        max_connections=8, transport=httpx.MockTransport(lambda r: httpx.Response(400))
    )
    assert (await forward(gw_bad, CHAT)).status_code == 400
    route = {"route": "chat.completions", "model": "m"}
    assert sample(metrics, "cortex_requests_total", **route, status_class="2xx") == 3
    assert sample(metrics, "cortex_requests_total", **route, status_class="4xx") == 1
    assert sample(metrics, "cortex_tokens_total", model="m", kind="prompt") == sum(
        r["prompt_tokens"] for r in rows
    )
    assert sample(metrics, "cortex_tokens_total", model="m", kind="completion") == 18
    assert sample(metrics, "cortex_request_duration_seconds_count", **route) == 4
    total_s = sum(r["latency_ms"] for r in rows) / 1000
    assert abs(sample(metrics, "cortex_request_duration_seconds_sum", **route) - total_s) < 1e-9
    assert sample(metrics, "cortex_time_to_first_token_seconds_count", **route) == 0  # none streamed


async def test_streams_are_counted_in_flight_and_ttft_observed() -> None:
    gw, metrics, rows = make(
        lambda r: httpx.Response(200, content=_sse(), headers={"content-type": "text/event-stream"})
    )
    resp = await forward(gw, {**CHAT, "stream": True})
    assert sample(metrics, "cortex_streams_in_flight", model="m") == 1  # handed to the relay, not sent yet
    await run_asgi(resp)
    assert sample(metrics, "cortex_streams_in_flight", model="m") == 0
    [row] = rows
    route = {"route": "chat.completions", "model": "m"}
    assert sample(metrics, "cortex_time_to_first_token_seconds_count", **route) == 1
    assert sample(metrics, "cortex_time_to_first_token_seconds_sum", **route) == row["ttft_ms"] / 1000


async def test_connect_errors_and_retries_are_counted_per_replica() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r0":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=OK)

    gw, metrics, _ = make(handler)
    for _ in range(4):
        assert (await forward(gw, CHAT)).status_code == 200
    # round robin: r0 is tried first every other request, fails, and the request moves on
    assert sample(metrics, "cortex_upstream_errors_total", model="m", replica="m/0", kind="connect") == 2
    assert sample(metrics, "cortex_upstream_retries_total", model="m") == 2
    assert (
        sample(metrics, "cortex_requests_total", route="chat.completions", model="m", status_class="2xx") == 4
    )


def test_rejections_are_counted_by_status_reason_and_limit_kind() -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    metrics.rejected(401, "invalid_api_key")
    metrics.rejected(401, "invalid_api_key")
    metrics.rejected(403, "model_not_allowed")
    metrics.rejected(429, "rate_limit_exceeded", limit_kind="tokens")
    metrics.rejected(429, "rate_limit_exceeded", limit_kind=None)
    assert sample(metrics, "cortex_auth_rejections_total", status="401", reason="invalid_api_key") == 2
    assert sample(metrics, "cortex_auth_rejections_total", status="403", reason="model_not_allowed") == 1
    assert sample(metrics, "cortex_ratelimit_rejections_total", kind="tokens") == 1
    assert sample(metrics, "cortex_ratelimit_rejections_total", kind="other") == 1
    assert sample(metrics, "cortex_ratelimit_rejections_total", kind="requests") == 0


async def _sse() -> AsyncIterator[bytes]:
    for chunk in SSE:
        yield chunk
