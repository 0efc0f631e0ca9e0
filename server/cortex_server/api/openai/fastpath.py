"""The /v1 inference POSTs, dispatched without the framework's router and dependency solver.

Why: profiled on the hot path (bench/gateway_bench.py, auth + limits + metering on), matching
a request against the app's ~70 routes and FastAPI's dependency solver cost about a fifth of
the gateway's CPU per request, for routes that take only the request and the key's principal.
So this middleware (the innermost one: the header and body limits have run) calls the same
endpoint functions with the same declared access check (`require_inference`) directly.

The APIRoutes stay registered: OpenAPI, the access-table test, other methods (405) and
non-canonical paths go through them. Errors are rendered by the app's own CortexError
handler, so rejection counting and the OpenAI error shape are the same on both paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cortex_server.api.deps import require_inference
from cortex_server.core.auth import Principal
from cortexctl.core.errors import CortexError

InferenceEndpoint = Callable[[Request, Principal], Awaitable[Response]]


class InferenceFastPath:
    def __init__(self, app: ASGIApp, *, routes: Mapping[str, InferenceEndpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal: Principal = await require_inference(request)
            response = await endpoint(request, principal)
        except CortexError as exc:
            handler = scope["app"].exception_handlers[CortexError]
            response = await handler(request, exc)
        await response(scope, receive, send)
