"""POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex_server.api.deps import InferenceDep
from cortex_server.api.openai.chat.protocol import parse_chat_request
from cortex_server.api.openai.forwarding import forward_inference
from cortex_server.services.gateway.proxy import CHAT_COMPLETIONS

router = APIRouter(tags=["openai"])


@router.post("/v1/chat/completions", response_class=Response)
async def chat_completions(request: Request, principal: InferenceDep) -> Response:
    return await forward_inference(request, principal, endpoint=CHAT_COMPLETIONS, parse=parse_chat_request)
