"""Render every error in OpenAI's shape, in one place: JSON bodies and SSE error events."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cortexctl.core.errors import CortexError, RateLimited

log = logging.getLogger(__name__)


def error_body(
    message: str,
    *,
    type_: str,
    param: str | None = None,
    code: str | int | None = None,
    fix: str | None = None,
) -> dict[str, Any]:
    text = message if not fix else f"{message} {fix}"
    return {"error": {"message": text, "type": type_, "param": param, "code": code}}


def body_for(exc: CortexError) -> dict[str, Any]:
    return error_body(exc.message, type_=exc.openai_type, param=exc.param, code=exc.code, fix=exc.fix)


def sse_error_event(exc: CortexError) -> bytes:
    """The same error body as a mid-stream SSE event (the stream cannot change status)."""
    return b"data: " + json.dumps(body_for(exc)).encode() + b"\n\n"


def response_for(exc: CortexError) -> JSONResponse:
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s - 1e-9)))
        headers.update(exc.details.get("headers") or {})  # x-ratelimit-* from the limiter
    elif exc.details.get("retry_after_s"):  # e.g. the limiter's fail-closed 503
        headers["Retry-After"] = str(max(1, math.ceil(float(exc.details["retry_after_s"]))))
    return JSONResponse(body_for(exc), status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CortexError)
    async def _cortex(_request: Request, exc: CortexError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("request failed: %s", exc.message)
        return response_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if first.get("type") == "json_invalid":
            message = "We could not parse the JSON body of your request."
            fix = "Send a valid JSON object with Content-Type: application/json."
            return JSONResponse(error_body(message, type_="invalid_request_error", fix=fix), status_code=400)
        param = ".".join(loc) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return JSONResponse(
            error_body(message, type_="invalid_request_error", param=param, code="invalid_value"),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "Unknown route. See /docs for the API reference."
        return JSONResponse(
            error_body(message, type_=type_, code=exc.status_code),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "The server hit an internal error.",
                type_="server_error",
                fix="See the daemon log for details.",
            ),
            status_code=500,
        )
