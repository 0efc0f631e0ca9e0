"""Request headers: more than `max_count` or larger than `max_bytes` in all → 431.

uvicorn's h11 parser caps a request head at `h11_max_incomplete_event_size` (main.serve sets
it to the same bound), but its httptools parser has no such cap: 1 MiB of headers were
accepted. This middleware gives every server the same answer; with httptools the head has
been read into memory by then (bounded by the socket, not by us): SECURITY.md notes it.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cortex_server.core.errors import error_body


class HeaderLimits:
    """The limits and their answer, shared by the middleware and the inference fast path."""

    def __init__(self, *, max_bytes: int, max_count: int) -> None:
        self.max_bytes = max_bytes
        self.max_count = max_count

    def refusal(self, scope: Scope) -> JSONResponse | None:
        """The 431 for an http scope whose headers are over the limits, else None."""
        headers = scope["headers"]
        size = sum(len(k) + len(v) + 4 for k, v in headers)
        if len(headers) <= self.max_count and size <= self.max_bytes:
            return None
        body = error_body(
            f"The request headers are too large ({len(headers)} headers, {size} bytes; "
            f"the limits are {self.max_count} headers and {self.max_bytes} bytes).",
            type_="invalid_request_error",
            code="headers_too_large",
            fix="Send fewer or smaller headers (cookies included).",
        )
        return JSONResponse(body, status_code=431, headers={"Connection": "close"})


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: HeaderLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (refused := self.limits.refusal(scope)) is not None:
            if scope["type"] == "http":
                await refused(scope, receive, send)
                return
            await send({"type": "websocket.close", "code": 1009})
            return
        await self.app(scope, receive, send)
