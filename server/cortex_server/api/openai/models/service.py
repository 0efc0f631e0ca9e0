"""Models as the registry sees them now."""

from __future__ import annotations

from collections.abc import Callable

from cortex_server.api.openai.models.protocol import ModelList, ModelPublic
from cortex_server.services.registry import ModelRegistry, ServedModel, model_not_found


def list_models(registry: ModelRegistry, *, visible: Callable[[str], bool]) -> ModelList:
    """The models this caller may use (a key's allow-list hides the rest)."""
    return ModelList(data=[_public(m) for m in registry.all() if visible(m.served_name)])


def get_model(registry: ModelRegistry, *, model_id: str, visible: Callable[[str], bool]) -> ModelPublic:
    if not visible(model_id):
        raise model_not_found(model_id)  # the same 404 as an unknown model: don't reveal what exists
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
