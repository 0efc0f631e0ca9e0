"""OpenAI-compatible API surfaces, one package each: protocol (validation), router (thin routes)."""

from __future__ import annotations

from fastapi import APIRouter

from cortex_server.api.openai.chat.router import chat_completions
from cortex_server.api.openai.chat.router import router as chat_router
from cortex_server.api.openai.completions.router import completions
from cortex_server.api.openai.completions.router import router as completions_router
from cortex_server.api.openai.embeddings.router import embeddings
from cortex_server.api.openai.embeddings.router import router as embeddings_router
from cortex_server.api.openai.fastpath import InferenceEndpoint
from cortex_server.api.openai.models.router import router as models_router

router = APIRouter()
for _r in (chat_router, completions_router, embeddings_router, models_router):
    router.include_router(_r)

# The same endpoints, for the fast path (fastpath.py): POST path -> endpoint(request, principal)
INFERENCE_ROUTES: dict[str, InferenceEndpoint] = {
    "/v1/chat/completions": chat_completions,
    "/v1/completions": completions,
    "/v1/embeddings": embeddings,
}
