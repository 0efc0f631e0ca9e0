"""Pooled keep-alive HTTP clients per engine replica, and the one place httpx errors become ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from cortexctl.core.errors import UpstreamConnectionError, UpstreamTimeout

__all__ = ["UpstreamClients", "map_upstream_errors", "timeout_for"]


class UpstreamClients:
    """One `httpx.AsyncClient` per upstream base URL, created on first use, closed in the lifespan."""

    def __init__(self, *, max_connections: int, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=60.0
        )
        self._transport = transport  # tests inject httpx.MockTransport here
        self._clients: dict[str, httpx.AsyncClient] = {}

    def get(self, base_url: str) -> httpx.AsyncClient:
        client = self._clients.get(base_url)
        if client is None:
            client = httpx.AsyncClient(
                base_url=base_url,
                limits=self._limits,
                transport=self._transport,
                trust_env=False,  # engines are on loopback: never a proxy
                follow_redirects=False,
            )
            self._clients[base_url] = client
        return client

    async def prune(self, keep: set[str]) -> None:
        """Close clients of upstreams that no longer exist."""
        for url in [u for u in self._clients if u not in keep]:
            await self._clients.pop(url).aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


_timeouts: dict[tuple[float, float], httpx.Timeout] = {}


def timeout_for(*, connect_s: float, request_s: float) -> httpx.Timeout:
    """Per-model timeouts; read is the longest gap between two bytes, which bounds a stalled engine."""
    key = (connect_s, request_s)
    t = _timeouts.get(key)
    if t is None:
        t = _timeouts[key] = httpx.Timeout(request_s, connect=connect_s, pool=connect_s)
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
            fix="The engine may have crashed; see `cortexctl model status`.",
        ) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        # Also what a pooled keep-alive connection that the engine just closed looks like:
        # `stale` lets the caller try the same replica once more, on a fresh connection.
        raise UpstreamConnectionError(
            f"Lost the connection to the engine at {base_url}: {exc or type(exc).__name__}.",
            fix="The engine may have crashed; see `cortexctl model status`.",
            details={"stale": True},
        ) from exc
    except httpx.TransportError as exc:
        raise UpstreamConnectionError(
            f"Transport error talking to the engine at {base_url}: {exc or type(exc).__name__}."
        ) from exc
