"""An engine's error answer, as the client should see it: a client's mistake is never a 5xx.

Engines answer a bad request in three ways. A 4xx with an OpenAI-shaped body: it goes
to the client with the engine's status and message, re-shaped if the engine's body is
not OpenAI's. A 5xx that is really the client's fault — llama-server raises "tools
param requires --jinja flag" or "image input is not supported" while parsing the
request and answers 500 — is recognised by the engine's own list
(`Engine.client_errors`) and becomes a 400 with the engine's message and a fix. A 501
("not supported": a feature the model's recipe does not switch on) becomes a 400 too.
An engine refusing the gateway's own credentials (401/403) is the gateway's problem:
502. Anything else (a real engine failure) passes through unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from cortex_server.core.errors import error_body
from cortexctl.core.errors import CortexError
from cortexctl.engines.registry import get_engine

log = logging.getLogger(__name__)

__all__ = ["client_facing"]

_CLIENT_STATUSES = {400, 404, 409, 413, 415, 422, 429}


def client_facing(response: Response, *, engine: str, served_name: str) -> Response:
    """`response` if it is a success or a real engine failure; else the client error it stands for."""
    status = response.status_code
    if status < 400:
        return response
    message, param, code = _engine_error(bytes(response.body))
    if status in _CLIENT_STATUSES:
        if message is None:  # not OpenAI's shape: say what we can
            message = f"The engine rejected the request (HTTP {status})."
        elif _is_openai_error(response.body):
            return response  # already what the SDKs expect
        return _rebuild(response, status, error_body(message, type_=_type_of(status), param=param, code=code))
    if status in (401, 403):
        log.warning("engine of %s refused the gateway (HTTP %s): %s", served_name, status, message)
        body = error_body(
            f"The engine of '{served_name}' refused the gateway's credentials (HTTP {status}).",
            type_="server_error",
            code="engine_auth_failed",
            fix="The operator should restart the model: `cortexctl model restart NAME`.",
        )
        return _rebuild(response, 502, body)
    if message is None:
        return response
    if status == 501:
        body = error_body(
            f"'{served_name}' does not support this request: {message}",
            type_="invalid_request_error",
            code="unsupported_by_model",
        )
        return _rebuild(response, 400, body)
    if status >= 500:
        for marker, fix in _client_errors(engine):
            if marker in message:
                body = error_body(
                    f"'{served_name}' cannot take this request: {message}.",
                    type_="invalid_request_error",
                    param=param,
                    code="unsupported_by_model",
                    fix=fix,
                )
                return _rebuild(response, 400, body)
    return response


def _client_errors(engine: str) -> tuple[tuple[str, str | None], ...]:
    try:
        return get_engine(engine).client_errors
    except CortexError:  # not an engine adapter (a test double): none known
        return ()


def _engine_error(content: bytes) -> tuple[str | None, str | None, Any]:
    """(message, param, code) from an engine's error body: OpenAI's shape or vLLM's older flat one."""
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        text = content.decode("utf-8", "replace").strip()
        return (text[:500] or None), None, None
    if not isinstance(payload, dict):
        return None, None, None
    inner = payload.get("error")
    err = inner if isinstance(inner, dict) else payload
    message = err.get("message") if isinstance(err.get("message"), str) else None
    param = err.get("param") if isinstance(err.get("param"), str) else None
    code = err.get("code") if isinstance(err.get("code"), str) else None
    return message, param, code


def _is_openai_error(content: bytes | memoryview) -> bool:
    try:
        payload = orjson.loads(bytes(content))
    except orjson.JSONDecodeError:
        return False
    err = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("type"), str)


def _type_of(status: int) -> str:
    return "rate_limit_error" if status == 429 else "invalid_request_error"


def _rebuild(old: Response, status: int, body: dict[str, Any]) -> Response:
    headers = {"x-request-id": old.headers["x-request-id"]} if "x-request-id" in old.headers else None
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)
