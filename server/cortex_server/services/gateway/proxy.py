"""Forward one OpenAI request to a replica of its model: pick, retry, relay, meter.

Retries: a connection error before the first byte (refused, reset, engine died
before answering) counts against the replica's circuit breaker and the request
goes to the next healthy replica. Once bytes have reached the client the request
is committed; a later failure ends the stream with an SSE error event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from cortex_server.core.auth import Principal
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.client_gone import CLIENT_CLOSED_REQUEST
from cortex_server.services.gateway.engine_errors import client_facing
from cortex_server.services.gateway.metering import CallMeter, UsageGate, UsageSink
from cortex_server.services.gateway.sse import SseRelay, extract_usage
from cortex_server.services.gateway.streaming import RelayResponse
from cortex_server.services.gateway.upstreams import (
    UpstreamClients,
    UpstreamResponse,
    map_upstream_errors,
    timeout_for,
)
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from cortexctl.core.errors import ServiceUnavailable, UpstreamConnectionError, UpstreamTimeout

if TYPE_CHECKING:
    from cortex_server.services.observability.gateway import GatewayMetrics

log = logging.getLogger(__name__)

_JSON_HEADERS = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"application/json"), (b"accept", b"text/event-stream")]


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str  # upstream path, same as ours
    name: str  # recorded in usage rows
    can_stream: bool


CHAT_COMPLETIONS = Endpoint("/v1/chat/completions", "chat.completions", True)
COMPLETIONS = Endpoint("/v1/completions", "completions", True)
EMBEDDINGS = Endpoint("/v1/embeddings", "embeddings", False)


class Gateway:
    def __init__(
        self,
        *,
        registry: ModelRegistry,
        clients: UpstreamClients,
        balancer: ReplicaBalancer,
        usage: UsageSink,
        metrics: GatewayMetrics | None = None,
        usage_gate: UsageGate | None = None,
        stream_send_timeout_s: float = 30.0,
    ) -> None:
        self.registry = registry
        self.stream_send_timeout_s = stream_send_timeout_s  # a stream's client stuck this long is dropped
        self.metrics = metrics
        self.clients = clients
        self.balancer = balancer
        self._usage = usage
        self._gate = usage_gate

    async def forward(
        self,
        *,
        endpoint: Endpoint,
        payload: dict[str, Any],
        raw: bytes,
        principal: Principal,
        on_usage: UsageSink | None = None,
        request_id: str | None = None,
    ) -> Response:
        """Proxy one request. `on_usage(row)` also sees the usage row (rate-limit reconciliation);
        `request_id` (the admission's) names the usage row and the `x-request-id` header."""
        sink = self._usage if on_usage is None else _tee(on_usage, self._usage)
        gate = self._gate
        if gate is not None and (why := gate.refusal()) is not None:
            raise ServiceUnavailable(
                f"Inference is paused: usage records cannot be made durable ({why}).",
                fix="Free disk space under $CORTEX_HOME/spool (or raise usage_journal_max_bytes and let the "
                "database catch up); set usage_journal_full_policy=serve to serve without durable records.",
                code="usage_journal_unavailable",
            )
        model = self.registry.require(payload["model"])
        body, stream, strip_usage = prepare_body(model, payload, raw, can_stream=endpoint.can_stream)
        replicas = self.balancer.order(model)
        if not replicas:
            raise ServiceUnavailable(
                f"The model '{model.served_name}' has no healthy replica (state: {model.state}).",
                fix="Wait for it to become running, or see why it is not: "
                f"`cortexctl model show {model.served_name}`.",
                code="model_not_ready",
            )
        meter = CallMeter(
            principal=principal,
            model=model.served_name,
            endpoint=endpoint.name,
            streamed=stream,
            request_id=request_id,
        )
        meter.prompt_estimate = -(-len(raw) // 4)  # estimate.py's rule: about 4 bytes of JSON a token
        timeout = timeout_for(connect_s=model.connect_timeout_s, request_s=model.request_timeout_s)
        if stream:
            response: Response | None = None
            try:
                response = await self._open_stream(
                    endpoint, body, replicas, timeout, meter, strip_usage, sink
                )
                if not isinstance(response, RelayResponse):
                    response = _for_client(response, model, meter)
                return response
            finally:  # from the relay's first byte on, the relay meters; before that, we do
                if not isinstance(response, RelayResponse) and meter.reached_engine:
                    sink(meter.row())
        try:
            answer = _for_client(await self._call(endpoint, body, replicas, timeout, meter), model, meter)
        finally:
            if meter.reached_engine:
                sink(meter.row())
        if gate is not None:
            await gate.durable()  # the record is on disk before the client has the answer
        return answer

    async def _call(
        self,
        endpoint: Endpoint,
        body: bytes,
        replicas: list[ReplicaEndpoint],
        timeout: dict[str, float | None],
        meter: CallMeter,
    ) -> Response:
        last: UpstreamConnectionError | None = None
        for i, replica in (plan := _Plan(replicas, self.balancer)):
            upstream = self.clients.get(replica.base_url)
            meter.replica = replica.key
            replica.outstanding += 1
            try:
                with map_upstream_errors(replica.base_url):
                    resp = await upstream.send(
                        endpoint.path,
                        body=body,
                        headers=[*_JSON_HEADERS, *replica.auth],
                        timeout=timeout,
                        fresh=plan.retried,
                    )
                    try:
                        content = await resp.aread()
                    finally:
                        await resp.aclose()
            except UpstreamConnectionError as exc:
                last = exc
                plan.failed(exc)
                continue
            except UpstreamTimeout:
                meter.reached_engine, meter.status_code = True, 504
                raise
            except asyncio.CancelledError:
                # The client went away (see disconnect.py): the engine had the request, so meter it.
                meter.reached_engine, meter.cancelled, meter.status_code = True, True, CLIENT_CLOSED_REQUEST
                meter.bill_estimate()
                raise
            finally:
                replica.outstanding -= 1
            meter.reached_engine = True
            if resp.status_code == 503 and i + 1 < len(replicas):  # loading or overloaded: next one
                plan.failed(None)
                continue
            self.balancer.record_success(replica)
            meter.status_code = resp.status_code
            if resp.status_code == 200:
                meter.usage = extract_usage(content)
            return _passthrough(resp, content, meter.request_id)
        raise _all_failed(replicas, last)

    async def _open_stream(
        self,
        endpoint: Endpoint,
        body: bytes,
        replicas: list[ReplicaEndpoint],
        timeout: dict[str, float | None],
        meter: CallMeter,
        strip_usage: bool,
        sink: UsageSink,
    ) -> Response:
        """Connect and wait for the first bytes (retrying elsewhere until then), then hand over a relay."""
        last: UpstreamConnectionError | None = None
        for i, replica in (plan := _Plan(replicas, self.balancer)):
            upstream = self.clients.get(replica.base_url)
            meter.replica = replica.key
            replica.outstanding += 1
            resp: UpstreamResponse | None = None
            handed_over = False
            try:
                with map_upstream_errors(replica.base_url):
                    resp = await upstream.send(
                        endpoint.path,
                        body=body,
                        headers=[*_SSE_HEADERS, *replica.auth],
                        timeout=timeout,
                        fresh=plan.retried,
                    )
                    meter.reached_engine = True
                    if resp.status_code != 200:
                        content = await resp.aread()
                        if resp.status_code == 503 and i + 1 < len(replicas):
                            plan.failed(None)
                            continue
                        meter.status_code = resp.status_code
                        self.balancer.record_success(replica)
                        return _passthrough(resp, content, meter.request_id)
                    chunks = resp.aiter_raw()
                    first = b""
                    async for first in chunks:
                        if first:
                            break
                meter.mark_first_byte()
                self.balancer.record_success(replica)
                handed_over = True
                if self.metrics is not None:
                    self.metrics.stream_opened(meter.model)
                relay = SseRelay(strip_usage_chunk=strip_usage)
                return RelayResponse(
                    upstream=resp,
                    chunks=chunks,
                    first=first,
                    relay=relay,
                    meter=meter,
                    replica=replica,
                    balancer=self.balancer,
                    usage_sink=sink,
                    usage_gate=self._gate,
                    send_timeout_s=self.stream_send_timeout_s,
                )
            except UpstreamConnectionError as exc:
                last = exc
                plan.failed(exc)
                continue
            except UpstreamTimeout:
                meter.reached_engine, meter.status_code = True, 504
                raise
            except asyncio.CancelledError:
                # The client left before the first byte (disconnect.py): the engine had the request
                # (its prompt at least was processed), so forward()'s `finally` meters it, once.
                meter.reached_engine, meter.cancelled, meter.status_code = True, True, CLIENT_CLOSED_REQUEST
                meter.bill_estimate()
                raise
            finally:
                if not handed_over:
                    replica.outstanding -= 1
                    if resp is not None:
                        await resp.aclose()
        raise _all_failed(replicas, last)


def _for_client(response: Response, model: ServedModel, meter: CallMeter) -> Response:
    """An engine's error answer as the client should see it (a client's mistake → 4xx)."""
    if response.status_code < 400:
        return response
    response = client_facing(response, engine=model.engine, served_name=model.served_name)
    meter.status_code = response.status_code
    return response


def _tee(first: UsageSink, second: UsageSink) -> UsageSink:
    def both(row: dict[str, Any]) -> None:
        first(row)
        second(row)

    return both


class _Plan:
    """The replicas to try, in order. A dropped pooled connection earns one more try on the
    same replica (the engine may just have closed an idle keep-alive connection); any
    other failure counts against the replica's breaker and moves on."""

    __slots__ = ("replicas", "balancer", "index", "retried")

    def __init__(self, replicas: list[ReplicaEndpoint], balancer: ReplicaBalancer) -> None:
        self.replicas, self.balancer, self.index, self.retried = replicas, balancer, 0, False

    def __iter__(self) -> Iterator[tuple[int, ReplicaEndpoint]]:
        while self.index < len(self.replicas):
            yield self.index, self.replicas[self.index]

    def failed(self, exc: UpstreamConnectionError | None) -> None:
        if exc is not None and exc.details.get("stale") and not self.retried:
            self.retried = True
            self.balancer.record_retry(self.replicas[self.index])
            return
        self.balancer.record_failure(self.replicas[self.index])
        self.index += 1
        if self.index < len(self.replicas):
            self.balancer.record_retry(self.replicas[self.index - 1])


def prepare_body(
    model: ServedModel, payload: dict[str, Any], raw: bytes, *, can_stream: bool
) -> tuple[bytes, bool, bool]:
    """(body to send, streaming?, strip the usage chunk?). Client bytes go as-is when nothing changes."""
    changed = False
    if model.upstream_model is not None and payload.get("model") != model.upstream_model:
        payload["model"] = model.upstream_model  # a remote endpoint serving it under its own name
        changed = True
    for key, value in model.request_defaults.items():
        if key not in payload:
            payload[key] = value
            changed = True
    stream = can_stream and payload.get("stream") is True
    strip_usage = False
    if stream:
        opts = payload.get("stream_options")
        if not (isinstance(opts, dict) and opts.get("include_usage") is True):
            payload["stream_options"] = (
                {**opts, "include_usage": True} if isinstance(opts, dict) else {"include_usage": True}
            )
            changed = strip_usage = True
    return (orjson.dumps(payload) if changed else raw), stream, strip_usage


def _passthrough(resp: UpstreamResponse, content: bytes, request_id: str) -> Response:
    return RelayedAnswer(
        content, resp.status_code, resp.headers.get("content-type") or "application/json", request_id
    )


class RelayedAnswer(Response):
    """An engine's complete answer, relayed with its own content type. Its headers are built here
    in one list: Starlette's `Response.__init__` (render, init_headers, MutableHeaders) did the
    same per request with several times the work, on the hot path."""

    def __init__(self, content: bytes, status_code: int, content_type: str, request_id: str) -> None:
        self.body = content
        self.status_code = status_code
        self.background = None
        if content_type.startswith("text/") and "charset=" not in content_type.lower():
            content_type += "; charset=utf-8"  # as Starlette's Response does
        headers = [(b"content-type", content_type.encode("latin-1")), (b"x-request-id", request_id.encode())]
        if status_code >= 200 and status_code not in (204, 304):  # those carry no body
            headers.insert(0, (b"content-length", b"%d" % len(content)))
        self.raw_headers = headers


def _all_failed(replicas: list[ReplicaEndpoint], last: UpstreamConnectionError | None) -> ServiceUnavailable:
    names = ", ".join(r.key for r in replicas)
    reason = last.message if last is not None else "every replica answered 503"
    return ServiceUnavailable(
        f"No replica could take the request (tried {names}): {reason}",
        fix=f"Retry shortly; if it persists, see `cortexctl model show {replicas[0].model_name}`.",
        code="no_replica_available",
    )
