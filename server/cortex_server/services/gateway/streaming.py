"""The streaming response: upstream SSE bytes to the client as they arrive.

A watcher task waits for the client's `http.disconnect`; when it comes, the pump
is cancelled, which closes the upstream connection (the engine stops generating)
and records the request as cancelled. Usage is metered in a `finally`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cortex_server.core.errors import sse_error_event
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.metering import CallMeter, UsageSink
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
        self._upstream_done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pump.done():  # the client left (or we are being shut down)
                # ...unless it had everything: the engine finished, or [DONE] went out
                self._meter.cancelled = not (self._upstream_done or self._relay.saw_done)
                pump.cancel()
            watcher.cancel()
            await asyncio.gather(pump, watcher, return_exceptions=True)
        if not pump.cancelled() and (exc := pump.exception()) is not None:
            raise exc

    async def _pump(self, send: Send) -> None:
        meter, relay = self._meter, self._relay
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            out = relay.feed(self._first)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
            try:
                with map_upstream_errors(self._replica.base_url):
                    async for chunk in self._chunks:
                        out = relay.feed(chunk)
                        if out:
                            await send({"type": "http.response.body", "body": out, "more_body": True})
                meter.status_code = 200
                self._upstream_done = True
            except CortexError as exc:  # mid-stream: the status is sent, so say it in the stream
                log.warning("stream from %s broke: %s", self._replica.key, exc.message)
                if isinstance(exc, UpstreamConnectionError):
                    self._balancer.record_failure(self._replica)
                meter.status_code = exc.status_code
                await send({"type": "http.response.body", "body": sse_error_event(exc), "more_body": True})
            tail = relay.flush()
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        except OSError:  # the client's socket went away under us
            meter.cancelled = True
        finally:
            self._replica.outstanding -= 1
            try:
                await self._upstream.aclose()
            finally:
                meter.usage = relay.usage
                self._usage_sink(meter.row())


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
