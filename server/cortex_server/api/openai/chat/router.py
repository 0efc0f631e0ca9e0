"""POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex_server.api.deps import ContextDep, InferenceDep
from cortex_server.api.openai.chat.protocol import parse_chat_request
from cortex_server.services.gateway.disconnect import unless_disconnected
from cortex_server.services.gateway.proxy import CHAT_COMPLETIONS

router = APIRouter(tags=["openai"])


@router.post("/v1/chat/completions", response_class=Response)
async def chat_completions(request: Request, grant: InferenceDep, ctx: ContextDep) -> Response:
    raw = await request.body()
    payload = parse_chat_request(raw)
    response = await unless_disconnected(
        request,
        ctx.gateway.forward(
            endpoint=CHAT_COMPLETIONS,
            payload=payload,
            raw=raw,
            principal=grant.principal,
            on_usage=grant.record_usage,
        ),
    )
    response.headers.update(grant.headers)  # x-ratelimit-*
    return response
