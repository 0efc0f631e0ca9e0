"""POST /v1/embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex_server.api.deps import ContextDep, InferenceDep
from cortex_server.api.openai.embeddings.protocol import parse_embedding_request
from cortex_server.services.gateway.disconnect import unless_disconnected
from cortex_server.services.gateway.proxy import EMBEDDINGS

router = APIRouter(tags=["openai"])


@router.post("/v1/embeddings", response_class=Response)
async def embeddings(request: Request, grant: InferenceDep, ctx: ContextDep) -> Response:
    raw = await request.body()
    payload = parse_embedding_request(raw)
    response = await unless_disconnected(
        request,
        ctx.gateway.forward(
            endpoint=EMBEDDINGS,
            payload=payload,
            raw=raw,
            principal=grant.principal,
            on_usage=grant.record_usage,
        ),
    )
    response.headers.update(grant.headers)  # x-ratelimit-*
    return response
