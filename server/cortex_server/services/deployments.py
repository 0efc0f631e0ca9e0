"""Admin-facing model operations: deploy a recipe, describe models, read their logs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cortex_server.db.models import Model, Recipe
from cortex_server.schemas.models import CrashHistory, ModelPublic, ReplicaPublic
from cortex_server.services import models
from cortex_server.services import recipes as recipe_store
from cortexctl.core.errors import InvalidRequest
from cortexctl.core.settings import Settings
from cortexctl.engines.base import engine_container_name
from cortexctl.engines.base import engine_log_file as log_file_of


def deploy(
    session: Session,
    *,
    yaml_text: str | None,
    source: str | None,
    recipe_name: str | None,
    name: str | None,
    roots: Sequence[Path],
) -> Model:
    """Register (or update) the recipe when YAML is given, then create a model for it.

    `roots` confine the files the recipe names (paths.store_roots(settings))."""

    if yaml_text is not None:  # the one insert-or-update path
        row, _ = recipe_store.apply_recipe(session, yaml_text=yaml_text, source=source, roots=roots)
        recipe_name = row.name
    if recipe_name is None:
        raise InvalidRequest("Give either a recipe YAML or the name of a registered recipe.", param="recipe")
    recipe = recipe_store.get_recipe(session, name=recipe_name)
    return models.create_model(session, recipe=recipe, name=name)


def describe(session: Session, *, model: Model, host_details: bool = True) -> ModelPublic:
    """The admin view of a model. `host_details=False` (callers that are not operators) leaves out
    what may name host paths or processes: state reasons, diagnoses, pids, container ids, ports."""
    recipe = session.get(Recipe, model.recipe_id)
    replicas = [ReplicaPublic.model_validate(r) for r in models.replicas_of(session, model_id=model.id)]
    runtimes = {r.runtime for r in replicas if r.runtime}
    if not host_details:
        replicas = [_without_host(r) for r in replicas]
    return ModelPublic(
        name=model.name,
        recipe=recipe.name if recipe else "?",
        engine=recipe.engine if recipe else "?",
        served_name=model.served_name,
        desired_state=model.desired_state,
        state=model.state,
        state_reason=model.state_reason if host_details else None,
        state_changed_at=model.state_changed_at,
        diagnosis=model.diagnosis if host_details else _rule_only(model.diagnosis),
        runtime=runtimes.pop() if len(runtimes) == 1 else (",".join(sorted(runtimes)) or None),
        replicas=replicas,
        created_at=model.created_at,
        crashes=crash_history(model, host_details=host_details),
    )


def crash_history(model: Model, *, host_details: bool = True) -> CrashHistory | None:
    if not model.crash_count:
        return None
    if not host_details:  # the log lines may name host paths
        return CrashHistory(restart_count=model.crash_count)
    return CrashHistory(
        restart_count=model.crash_count,
        last_exit_code=model.last_exit_code,
        last_exit_signal=model.last_exit_signal,
        last_crash=model.last_crash,
    )


def _rule_only(diagnosis: dict[str, Any] | None) -> dict[str, Any] | None:
    return {"rule": diagnosis.get("rule")} if diagnosis else None


def _without_host(replica: ReplicaPublic) -> ReplicaPublic:
    return replica.model_copy(
        update={
            "state_reason": None,
            "pid": None,
            "container_id": None,
            "port": None,
            "diagnosis": _rule_only(replica.diagnosis),
        }
    )


def engine_log_file(settings: Settings, *, session: Session, model: Model, replica: int) -> Path:
    """Where the engine of one replica writes its log (both runtimes mirror into this file)."""
    recipe = session.get(Recipe, model.recipe_id)
    assert recipe is not None  # FK RESTRICT keeps a model's recipe
    return log_file_of(settings, engine_container_name(recipe.engine, model.id, replica))


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
