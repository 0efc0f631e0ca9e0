"""GET /v1/models and GET /v1/models/{id} (ids may contain '/')."""

from __future__ import annotations

from fastapi import APIRouter

from cortex_server.api.deps import ContextDep, InferenceKeyDep
from cortex_server.api.openai.models.protocol import ModelList, ModelPublic
from cortex_server.api.openai.models.service import get_model, list_models

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=ModelList)
async def models(principal: InferenceKeyDep, ctx: ContextDep) -> ModelList:
    return list_models(ctx.registry, visible=principal.model_allowed)


@router.get("/v1/models/{model_id:path}", response_model=ModelPublic)
async def model(model_id: str, principal: InferenceKeyDep, ctx: ContextDep) -> ModelPublic:
    return get_model(ctx.registry, model_id=model_id, visible=principal.model_allowed)
