"""POST /v1/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex_server.api.deps import InferenceDep
from cortex_server.api.openai.completions.protocol import parse_completion_request
from cortex_server.api.openai.forwarding import forward_inference
from cortex_server.services.gateway.proxy import COMPLETIONS

router = APIRouter(tags=["openai"])


@router.post("/v1/completions", response_class=Response)
async def completions(request: Request, principal: InferenceDep) -> Response:
    return await forward_inference(request, principal, endpoint=COMPLETIONS, parse=parse_completion_request)
