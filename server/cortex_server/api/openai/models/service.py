"""Models as the registry sees them now."""

from __future__ import annotations

from cortex_server.api.openai.models.protocol import ModelList, ModelPublic
from cortex_server.services.registry import ModelRegistry, ServedModel


def list_models(registry: ModelRegistry) -> ModelList:
    return ModelList(data=[_public(m) for m in registry.all()])


def get_model(registry: ModelRegistry, *, model_id: str) -> ModelPublic:
    return _public(registry.require(model_id))


def _public(m: ServedModel) -> ModelPublic:
    return ModelPublic(
        id=m.served_name,
        created=m.created,
        state=m.state,
        engine=m.engine,
        replicas=len(m.replicas),
        healthy_replicas=sum(1 for r in m.replicas if r.healthy),
        max_model_len=m.max_model_len,
    )
