"""The streaming response: upstream SSE bytes to the client as they arrive.

A watcher task waits for the client's `http.disconnect`; when it comes, the pump
is cancelled, which closes the upstream connection (the engine stops generating)
and records the request as cancelled. Usage is metered in a `finally`: the engine's
usage chunk, or for a stream cut short the tokens the relay counted (sse.py).

A client that stops reading must not hold an engine slot: the server's `send` waits
while the client's socket is full, so a guard drops the stream once one send has
waited `send_timeout_s` (metered 499, the engine connection closed, so the engine
stops generating). Meanwhile the transport stops reading from the engine once
`stream_buffer_max_bytes` are waiting (transport.py), so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from cortex_server.core.errors import sse_error_event
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.client_gone import wait_for_disconnect
from cortex_server.services.gateway.metering import CallMeter, UsageGate, UsageSink
from cortex_server.services.gateway.sse import SseRelay
from cortex_server.services.gateway.upstreams import UpstreamResponse, map_upstream_errors
from cortex_server.services.registry import ReplicaEndpoint
from cortexctl.core.errors import CortexError, UpstreamConnectionError

log = logging.getLogger(__name__)


class RelayResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        *,
        upstream: UpstreamResponse,
        chunks: AsyncIterator[bytes],
        first: bytes,
        relay: SseRelay,
        meter: CallMeter,
        replica: ReplicaEndpoint,
        balancer: ReplicaBalancer,
        usage_sink: UsageSink,
        usage_gate: UsageGate | None = None,
        send_timeout_s: float = 0.0,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-request-id": meter.request_id})
        self._upstream = upstream
        self._chunks = chunks
        self._first = first
        self._relay = relay
        self._meter = meter
        self._replica = replica
        self._balancer = balancer
        self._usage_sink = usage_sink
        self._usage_gate = usage_gate
        self._upstream_done = False
        self._metered = False
        self._send_timeout_s = send_timeout_s  # 0: no guard
        self._sending_since: float | None = None  # loop time the pending send began (None: none pending)
        self._guard: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
        if self._send_timeout_s > 0:
            self._guard = asyncio.get_running_loop().call_later(self._send_timeout_s, self._check_send, pump)
        try:
            try:
                await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
            finally:
                if self._guard is not None:
                    self._guard.cancel()
                if not pump.done():  # the client left (or we are being shut down)
                    self._client_left()
                    pump.cancel()
                watcher.cancel()
                await asyncio.gather(pump, watcher, return_exceptions=True)
        finally:  # here, not in the pump: a pump cancelled before its first step runs no `finally`
            await self._close()
        if not pump.cancelled() and (exc := pump.exception()) is not None:
            raise exc

    def _client_left(self) -> None:
        # ...unless it had everything: the engine finished, or [DONE] went out
        self._meter.cancelled = not (self._upstream_done or self._relay.saw_done)

    def _check_send(self, pump: asyncio.Future[None]) -> None:
        """The guard: drop the stream when one send has waited `send_timeout_s` for the client.

        One timer per stream, re-armed for the pending send's deadline, instead of a timeout
        around every send (the hot path)."""
        loop = asyncio.get_running_loop()
        since, now = self._sending_since, loop.time()
        if since is not None and now - since >= self._send_timeout_s:
            log.warning(
                "dropping a stream from %s: its client took no bytes for %.0f s (stream_send_timeout_s)",
                self._replica.key,
                now - since,
            )
            self._client_left()
            pump.cancel()  # closes the engine connection: the engine stops and frees its slot
            return
        delay = self._send_timeout_s if since is None else since + self._send_timeout_s - now
        self._guard = loop.call_later(delay, self._check_send, pump)

    async def _send(self, send: Send, message: Message) -> None:
        self._sending_since = asyncio.get_running_loop().time()
        await send(message)
        self._sending_since = None

    async def _pump(self, send: Send) -> None:
        meter, relay, send_guarded = self._meter, self._relay, self._send
        clock = asyncio.get_running_loop().time
        try:
            await send_guarded(
                send, {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            )
            out = relay.feed(self._first)
            if out:
                await send_guarded(send, {"type": "http.response.body", "body": out, "more_body": True})
            try:
                with map_upstream_errors(self._replica.base_url):
                    async for chunk in self._chunks:
                        out = relay.feed(chunk)
                        if relay.saw_done and not self._metered:  # [DONE] ends it for the client
                            meter.status_code = 200
                            await self._meter_durably()
                        if out:  # _send inlined: the per-chunk path
                            self._sending_since = clock()
                            await send({"type": "http.response.body", "body": out, "more_body": True})
                            self._sending_since = None
                meter.status_code = 200
                self._upstream_done = True
                await self._meter_durably()
            except CortexError as exc:  # mid-stream: the status is sent, so say it in the stream
                log.warning("stream from %s broke: %s", self._replica.key, exc.message)
                if isinstance(exc, UpstreamConnectionError):
                    self._balancer.record_failure(self._replica)
                meter.status_code = exc.status_code
                await send_guarded(
                    send, {"type": "http.response.body", "body": sse_error_event(exc), "more_body": True}
                )
            tail = relay.flush()  # first: an unterminated last event may hold the usage
            if not self._metered:
                await self._meter_durably()
            await send_guarded(send, {"type": "http.response.body", "body": tail, "more_body": False})
        except OSError:  # the client's socket went away under us
            meter.cancelled = True

    async def _close(self) -> None:
        """Once per stream, however it ended: the replica's count, the engine connection, the row."""
        self._replica.outstanding -= 1
        try:
            await self._upstream.aclose()
        finally:
            if not self._metered:
                self._metered = True
                self._meter.usage = self._relay.usage
                self._meter.bill_estimate(self._relay.tokens_seen)
                self._usage_sink(self._meter.row())

    async def _meter_durably(self) -> None:
        """The usage record, on disk before the stream's end goes out."""
        if self._metered:
            return
        self._metered = True
        self._meter.usage = self._relay.usage
        self._meter.bill_estimate(self._relay.tokens_seen)
        self._usage_sink(self._meter.row())
        if self._usage_gate is not None:
            await self._usage_gate.durable()
