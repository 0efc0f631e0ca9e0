"""POST /v1/embeddings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex_server.api.deps import InferenceDep, context_of
from cortex_server.api.openai.embeddings.protocol import parse_embedding_request
from cortex_server.api.openai.forwarding import forward_inference
from cortex_server.services.gateway.proxy import EMBEDDINGS
from cortex_server.services.registry import ModelRegistry
from cortexctl.core.errors import InvalidRequest

router = APIRouter(tags=["openai"])


@router.post("/v1/embeddings", response_class=Response)
async def embeddings(request: Request, principal: InferenceDep) -> Response:
    registry = context_of(request).gateway.registry

    def parse(decoded: Any) -> dict[str, Any]:
        return refuse_unless_embeddings(registry, parse_embedding_request(decoded))

    return await forward_inference(request, principal, endpoint=EMBEDDINGS, parse=parse)


def refuse_unless_embeddings(registry: ModelRegistry, payload: dict[str, Any]) -> dict[str, Any]:
    """A 400 naming the recipe setting when the model's recipe serves no embeddings.

    The engine would answer 501 (llama-server) or a 5xx: the client's mistake, known
    here from the recipe before anything reaches the engine.
    """
    model = registry.get(payload["model"]) if isinstance(payload.get("model"), str) else None
    if model is None or model.serves_embeddings is not False:
        return payload  # unknown models get the gateway's 404; unknown support goes to the engine
    raise InvalidRequest(
        f"The model '{model.served_name}' does not serve embeddings: its recipe "
        f"'{model.recipe}' does not set {model.embeddings_setting}.",
        fix="Send embeddings requests to an embedding model (see GET /v1/models), or ask the operator "
        f"to set {model.embeddings_setting} in that recipe.",
        param="model",
        code="embeddings_not_supported",
    )
