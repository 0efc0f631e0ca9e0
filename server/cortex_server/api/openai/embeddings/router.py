"""POST /v1/embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex_server.api.deps import ContextDep, InferenceDep
from cortex_server.api.openai.embeddings.protocol import parse_embedding_request
from cortex_server.api.openai.forwarding import forward_inference
from cortex_server.services.gateway.proxy import EMBEDDINGS

router = APIRouter(tags=["openai"])


@router.post("/v1/embeddings", response_class=Response)
async def embeddings(request: Request, grant: InferenceDep, ctx: ContextDep) -> Response:
    return await forward_inference(request, grant, ctx, endpoint=EMBEDDINGS, parse=parse_embedding_request)
