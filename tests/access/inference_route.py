"""A test-only inference route (not in production code) that goes through admission the way
the gateway's /v1 routes do: `require_inference` (key, scope, IP), then the admission service
(allow-list, token estimate, lease), a body the route still reads, usage at the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from cortex_server.api.deps import InferenceDep, InferenceKeyDep, context_of
from cortex_server.api.openai.protocol import decode_json
from cortex_server.services.gateway.admission import Ticket
from cortexctl.core.errors import InvalidRequest

TEST_INFERENCE_PATH = "/test/inference"


async def _admit(request: Request, principal: Any) -> tuple[Any, Ticket]:
    raw = await request.body()
    payload = decode_json(raw)
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    admission = context_of(request).admission
    return admission, await admission.admit(principal, raw=raw, payload=payload, path=request.url.path)


def add_test_inference_route(app: FastAPI) -> None:
    @app.get("/test/models")
    async def test_models(principal: InferenceKeyDep) -> dict[str, Any]:
        return {"allowed": list(principal.allowed_models)}

    @app.post(TEST_INFERENCE_PATH, response_class=Response)
    async def test_inference(request: Request, principal: InferenceDep) -> Response:
        admission, ticket = await _admit(request, principal)

        async def work(t: Ticket) -> Response:
            body = t.payload or {}
            await asyncio.sleep(float(body.get("sleep_s", 0)))
            used = body.get("tokens_used")
            t.tokens_used = int(used) if used is not None else None
            content = {"ok": True, "model": t.model, "estimate": t.tokens_estimate, "key": t.principal.name}
            return JSONResponse({**content, "request_id": t.request_id})

        return await admission.serve(ticket, work)


TEST_STREAM_PATH = "/test/inference-stream"


def add_test_stream_route(app: FastAPI) -> None:
    """Streams for `sleep_s`; the admission service alone frees the slot, after the last chunk."""

    @app.post(TEST_STREAM_PATH, response_class=Response)
    async def test_stream(request: Request, principal: InferenceDep) -> Response:
        admission, ticket = await _admit(request, principal)
        sleep_s = float((ticket.payload or {}).get("sleep_s", 0))

        async def chunks() -> Any:
            for _ in range(5):
                await asyncio.sleep(sleep_s / 5)
                yield b"data: {}\n\n"

        async def work(t: Ticket) -> Response:
            return StreamingResponse(chunks(), media_type="text/event-stream")

        return await admission.serve(ticket, work)
