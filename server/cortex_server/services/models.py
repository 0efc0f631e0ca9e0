"""Models (deployments of recipes) in the DB: create, find, record intent, delete.

Admin calls only record intent here (the desired state, a start or restart request);
the supervisor alone moves states (services/lifecycle.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.db.models import Model, ModelReplica, Recipe, utcnow
from cortex_server.services.lifecycle import DesiredState, State
from cortexctl.core.errors import Conflict, NotFound
from cortexctl.recipes.loader import parse_recipe
from cortexctl.recipes.schema import Recipe as RecipeDoc


@dataclass(frozen=True)
class ModelWithRecipe:
    model: Model
    recipe: RecipeDoc
    replicas: list[ModelReplica]


def get_model(session: Session, *, name: str) -> Model:
    row = session.scalar(select(Model).where(Model.name == name))
    if row is None:
        raise NotFound(f"No model named {name!r}.", fix="List models with `cortexctl model list`.")
    return row


def list_models(session: Session) -> list[Model]:
    return list(session.scalars(select(Model).order_by(Model.name)))


def replicas_of(session: Session, *, model_id: int) -> list[ModelReplica]:
    query = select(ModelReplica).where(ModelReplica.model_id == model_id).order_by(ModelReplica.replica_index)
    return list(session.scalars(query))


def load_with_recipe(session: Session, *, model: Model) -> ModelWithRecipe:
    recipe_row = session.get(Recipe, model.recipe_id)
    assert recipe_row is not None  # FK RESTRICT keeps it
    doc = _parsed(recipe_row.yaml_text, recipe_row.source or f"recipe:{recipe_row.name}")
    return ModelWithRecipe(model=model, recipe=doc, replicas=replicas_of(session, model_id=model.id))


@functools.lru_cache(maxsize=256)
def _parsed(yaml_text: str, source: str) -> RecipeDoc:
    # The supervisor loads every model each tick; recipes are immutable (frozen) once parsed.
    return parse_recipe(yaml_text, source=source)


def create_model(session: Session, *, recipe: Recipe, name: str | None = None) -> Model:
    name = name or recipe.name
    if session.scalar(select(Model.id).where(Model.name == name)) is not None:
        raise Conflict(f"A model named {name!r} already exists.", fix="Use it, or delete it first.")
    row = Model(name=name, recipe_id=recipe.id, served_name=recipe.served_name)
    session.add(row)
    session.flush()
    return row


def record_intent(model: Model, *, desired: DesiredState, restart: bool = False) -> Model:
    """What an admin asked for. Asking for `running` is also a start request (failed replicas get
    a fresh set of tries); `restart` stops the running replicas first. The supervisor acts on it."""
    model.desired_state = desired
    if desired == DesiredState.RUNNING:
        model.start_requested_at = utcnow()
        if restart:
            model.restart_requested_at = model.start_requested_at
    return model


def delete_model(session: Session, *, model: Model) -> None:
    if model.state not in (State.STOPPED, State.FAILED) or model.desired_state != DesiredState.STOPPED:
        raise Conflict(
            f"Model {model.name!r} is {model.state}.",
            fix=f"Stop it first: `cortexctl model stop {model.name}`.",
        )
    session.delete(model)
