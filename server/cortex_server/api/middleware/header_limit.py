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


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope["headers"]
            size = sum(len(k) + len(v) + 4 for k, v in headers)
            if len(headers) > self.max_count or size > self.max_bytes:
                body = error_body(
                    f"The request headers are too large ({len(headers)} headers, {size} bytes; "
                    f"the limits are {self.max_count} headers and {self.max_bytes} bytes).",
                    type_="invalid_request_error",
                    code="headers_too_large",
                    fix="Send fewer or smaller headers (cookies included).",
                )
                if scope["type"] == "http":
                    response = JSONResponse(body, status_code=431, headers={"Connection": "close"})
                    await response(scope, receive, send)
                    return
                await send({"type": "websocket.close", "code": 1009})
                return
        await self.app(scope, receive, send)
