"""Admin-facing model operations: deploy a recipe, describe models, read their logs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.db.models import Model, Recipe
from cortex_server.schemas.models import ModelPublic, ReplicaPublic
from cortex_server.services import models as model_store
from cortex_server.services import recipes as recipe_store
from cortexctl.core.errors import InvalidRequest
from cortexctl.core.settings import Settings
from cortexctl.engines.base import get_engine
from cortexctl.recipes.loader import parse_recipe


def deploy(
    session: Session, *, yaml_text: str | None, source: str | None, recipe_name: str | None, name: str | None
) -> Model:
    """Register (or update) the recipe when YAML is given, then create a model for it."""

    if yaml_text is not None:
        doc = parse_recipe(yaml_text, source=source or "request")
        existing = session.scalar(select(Recipe).where(Recipe.name == doc.name))
        if existing is None:
            recipe_store.create_recipe(session, yaml_text=yaml_text, source=source)
        elif existing.yaml_text != yaml_text:
            recipe_store.update_recipe(session, name=doc.name, yaml_text=yaml_text, source=source)
        recipe_name = doc.name
    if recipe_name is None:
        raise InvalidRequest("Give either a recipe YAML or the name of a registered recipe.", param="recipe")
    recipe = recipe_store.get_recipe(session, name=recipe_name)
    return model_store.create_model(session, recipe=recipe, name=name)


def describe(session: Session, *, model: Model) -> ModelPublic:
    recipe = session.get(Recipe, model.recipe_id)
    replicas = model_store.replicas_of(session, model_id=model.id)
    runtimes = {r.runtime for r in replicas if r.runtime}
    return ModelPublic(
        name=model.name,
        recipe=recipe.name if recipe else "?",
        engine=recipe.engine if recipe else "?",
        served_name=model.served_name,
        desired_state=model.desired_state,
        state=model.state,
        state_reason=model.state_reason,
        state_changed_at=model.state_changed_at,
        diagnosis=model.diagnosis,
        runtime=runtimes.pop() if len(runtimes) == 1 else (",".join(sorted(runtimes)) or None),
        replicas=[ReplicaPublic.model_validate(r) for r in replicas],
        created_at=model.created_at,
    )


def engine_log_file(settings: Settings, *, session: Session, model: Model, replica: int) -> Path:
    """Where the engine of one replica writes its log (both runtimes mirror into this file)."""
    entry = model_store.load_with_recipe(session, model=model)
    spec = get_engine(entry.recipe.spec.engine).launch_spec(
        entry.recipe, model_id=model.id, replica_index=replica, port=0, settings=settings
    )
    return spec.log_file


def read_tail(path: Path, *, lines: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
