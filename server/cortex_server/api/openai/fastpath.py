"""The /v1 inference POSTs, dispatched without the framework's router and dependency solver.

Why: profiled on the hot path (bench/gateway_bench.py, auth + limits + metering on), matching
a request against the app's ~70 routes and FastAPI's dependency solver cost about a fifth of
the gateway's CPU per request, for routes that take only the request and the key's principal.
So this middleware calls the same endpoint functions with the same declared access check
(`require_inference`) directly. It is the outermost of ours: for its routes it applies the
header and body limits itself (the same checks and answers: the limit objects are the
middlewares'), in the same order, and reads the whole body before the endpoint runs. Wrapping
`receive` and `send` for a body that is read whole, up front, cost two more layers per message
on every request.

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
from cortex_server.api.middleware.body_limit import BodyLimits, BodyRefused
from cortex_server.api.middleware.header_limit import HeaderLimits
from cortex_server.core.auth import Principal
from cortexctl.core.errors import CortexError

InferenceEndpoint = Callable[[Request, Principal], Awaitable[Response]]


class InferenceFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Mapping[str, InferenceEndpoint],
        header_limits: HeaderLimits,
        body_limits: BodyLimits,
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.header_limits = header_limits
        self.body_limits = body_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        # in the middlewares' order: header limits, a declared oversized body, then the key (so
        # a caller without one never gets to hold a body read open), then the body
        if (refused := self.header_limits.refusal(scope)) is not None:
            await refused(scope, receive, send)
            return
        if self.body_limits.declared_too_large(scope):
            await self.body_limits.too_large()(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal: Principal = await require_inference(request)
            try:
                # what Request.body() returns from now on (Starlette's own cache)
                request._body = await self.body_limits.read_body(scope, receive)
            except BodyRefused as exc:
                await exc.response(scope, receive, send)
                return
            response = await endpoint(request, principal)
        except CortexError as exc:
            handler = scope["app"].exception_handlers[CortexError]
            response = await handler(request, exc)
        await response(scope, receive, send)
