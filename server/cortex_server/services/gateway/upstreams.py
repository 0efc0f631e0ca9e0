"""Pooled keep-alive connections per engine replica, and the one place httpx errors become ours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Protocol

import httpx

from cortex_server.services.gateway.transport import FRESH_CONNECTION, LoopbackTransport
from cortexctl.core.errors import UpstreamConnectionError, UpstreamTimeout

__all__ = ["Upstream", "UpstreamClients", "UpstreamResponse", "map_upstream_errors", "timeout_for"]


class _Headers(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


class UpstreamResponse(Protocol):
    """An engine's answer as the gateway reads it: httpx.Response, or the loopback transport's."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> _Headers: ...
    async def aread(self) -> bytes: ...
    def aiter_raw(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class Upstream:
    """One engine replica's connection pool (keep-alive), plus its parsed URLs."""

    __slots__ = ("base_url", "transport", "_urls", "_heads")

    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport) -> None:
        self.base_url = base_url
        self.transport = transport
        self._urls: dict[str, httpx.URL] = {}
        self._heads: dict[tuple[str, tuple[tuple[bytes, bytes], ...]], bytes] = {}

    def url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        return url

    def _head(self, path: str, headers: list[tuple[bytes, bytes]]) -> bytes:
        """Request line, Host and `headers`, serialised once per (path, headers)."""
        key = (path, tuple(headers))
        head = self._heads.get(key)
        if head is None:
            url = self.url(path)
            lines = [b"POST %s HTTP/1.1\r\nHost: %s\r\n" % (url.raw_path, url.netloc)]
            lines += [name + b": " + value + b"\r\n" for name, value in headers]
            if len(self._heads) > 64:  # engine keys change on restarts: keep only recent ones
                self._heads.clear()
            head = self._heads[key] = b"".join(lines)
        return head

    async def send(
        self,
        path: str,
        *,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: dict[str, float | None],
        fresh: bool = False,
    ) -> UpstreamResponse:
        """POST on a pooled connection; the caller reads and closes the response.

        The transport is called directly: the client layer (auth, redirects, cookies,
        URL merging) does nothing for loopback engines but costs on every request.
        """
        transport = self.transport
        if type(transport) is LoopbackTransport:  # the engines' transport; tests may inject others
            head = self._head(path, headers)
            return await transport.post(self.url(path), head=head, body=body, timeouts=timeout, fresh=fresh)
        extensions: dict[str, object] = {"timeout": timeout}
        if fresh:  # a retry after a dropped pooled connection: the next idle one may be just as stale
            extensions[FRESH_CONNECTION] = True
        request = httpx.Request("POST", self.url(path), headers=headers, content=body, extensions=extensions)
        return await self.transport.handle_async_request(request)


def _transport_for(base_url: str, max_idle: int, max_buffer: int) -> httpx.AsyncBaseTransport:
    """Plain HTTP/1.1 engines get the lean transport; an https endpoint (engines/remote) httpx's own
    (which reads only when asked, so a slow reader holds back the engine without a buffer cap)."""
    if base_url.startswith("https://"):
        return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=max_idle), retries=0)
    return LoopbackTransport(max_idle=max_idle, max_buffer=max_buffer)


class UpstreamClients:
    """The pooled upstreams, one per engine base URL, created on first use and closed in the lifespan."""

    def __init__(
        self,
        *,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_buffer_max_bytes: int = 1 << 20,
    ) -> None:
        self._max_idle = max_connections
        self._max_buffer = stream_buffer_max_bytes
        self._shared_transport = transport  # tests inject httpx.MockTransport here
        self._upstreams: dict[str, Upstream] = {}

    def get(self, base_url: str) -> Upstream:
        upstream = self._upstreams.get(base_url)
        if upstream is None:
            transport = self._shared_transport or _transport_for(base_url, self._max_idle, self._max_buffer)
            upstream = self._upstreams[base_url] = Upstream(base_url, transport)
        return upstream

    async def prune(self, keep: set[str]) -> None:
        """Close the pools of upstreams that no longer exist."""
        for url in [u for u in self._upstreams if u not in keep]:
            await self._upstreams.pop(url).transport.aclose()

    async def aclose(self) -> None:
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        for upstream in upstreams:
            if upstream.transport is not self._shared_transport:
                await upstream.transport.aclose()


_timeouts: dict[tuple[float, float], dict[str, float | None]] = {}


def timeout_for(*, connect_s: float, request_s: float) -> dict[str, float | None]:
    """Per-model timeouts as the transport takes them; read bounds the gap between two bytes."""
    key = (connect_s, request_s)
    t = _timeouts.get(key)
    if t is None:
        t = _timeouts[key] = httpx.Timeout(request_s, connect=connect_s, pool=connect_s).as_dict()
    return t


@contextmanager
def map_upstream_errors(base_url: str) -> Iterator[None]:
    """httpx → CortexError. Connection trouble is retryable elsewhere; timeouts are not (504)."""
    try:
        yield
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise UpstreamConnectionError(
            f"Timed out connecting to the engine at {base_url}.", fix="Check the model's health."
        ) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"The engine at {base_url} did not answer in time.",
            fix="Retry with a smaller request, or raise the model's request timeout.",
        ) from exc
    except httpx.ConnectError as exc:
        raise UpstreamConnectionError(
            f"Cannot connect to the engine at {base_url}: {exc or type(exc).__name__}.",
            fix="The engine may have crashed; see `cortexctl model list`.",
        ) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        # Also what a pooled keep-alive connection that the engine just closed looks like:
        # `stale` lets the caller try the same replica once more, on a fresh connection.
        raise UpstreamConnectionError(
            f"Lost the connection to the engine at {base_url}: {exc or type(exc).__name__}.",
            fix="The engine may have crashed; see `cortexctl model list`.",
            details={"stale": True},
        ) from exc
    except httpx.TransportError as exc:
        raise UpstreamConnectionError(
            f"Transport error talking to the engine at {base_url}: {exc or type(exc).__name__}."
        ) from exc
