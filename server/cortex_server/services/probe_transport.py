"""The supervisor's HTTP transport for engine probes and scrapes: TLS only when an engine needs it.

Why: a client with httpx's defaults builds a verifying TLS context at once, and loading the CA
bundle into it costs ~2.8 MiB of the process. Engines the daemon launches answer plain HTTP on
loopback; only a remote engine (engines/remote) may be https. So plain http:// goes through a
pool that never verifies anything because it never speaks TLS, and https:// through a verifying
pool built on the first https request.
"""

from __future__ import annotations

from typing import Any

import httpx


class ProbeTransport(httpx.AsyncBaseTransport):
    def __init__(self, **pool: Any) -> None:
        self._pool = pool
        # verify=False: this pool carries http:// only (the scheme is checked per request, redirect
        # hops included), so there is no certificate to check; it skips building the CA store
        self._plain = httpx.AsyncHTTPTransport(verify=False, **pool)
        self._tls: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return await self._plain.handle_async_request(request)
        if self._tls is None:
            self._tls = httpx.AsyncHTTPTransport(**self._pool)  # verifies, with the default CA bundle
        return await self._tls.handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()
        if self._tls is not None:
            await self._tls.aclose()
