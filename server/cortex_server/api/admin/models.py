"""/admin/models: deploy recipes, start/stop/restart, inspect state and engine logs.

Models are appliance-wide: changing them, reading engine logs and the preflight
(which shows the engine command with its host paths) is for operators. Other
holders of models:read see each model's state without host details (no pids,
container ids, diagnosis text or log lines).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from cortex_server.api.deps import ContextDep, ModelsWriter, SessionDep, request_ip, require_scope
from cortex_server.context import AppContext
from cortex_server.core.auth import Principal
from cortex_server.schemas.models import ModelCreate, ModelLogs, ModelPublic
from cortex_server.services import audit, deployments, models
from cortex_server.services.lifecycle import DesiredState
from cortexctl.recipes.paths import store_roots

router = APIRouter(prefix="/admin/models", tags=["admin: models"])
ModelsReader = Annotated[Principal, Depends(require_scope("models:read"))]
# What names host paths (engine logs, the preflight's command): operators only.
HostReader = Annotated[Principal, Depends(require_scope("models:read", operator=True))]


@router.post("", response_model=ModelPublic, status_code=201)
def create_model(
    body: ModelCreate, request: Request, principal: ModelsWriter, session: SessionDep, ctx: ContextDep
) -> ModelPublic:
    model = deployments.deploy(
        session,
        yaml_text=body.yaml,
        source=body.source,
        recipe_name=body.recipe,
        name=body.name,
        roots=store_roots(ctx.settings),
    )
    if body.start:
        models.record_intent(model, desired=DesiredState.RUNNING)
    audit.record(
        session, principal=principal, action="models.create", target=model.name, client_ip=request_ip(request)
    )
    session.commit()
    ctx.poke_supervisor(model.id)
    return deployments.describe(session, model=model)


@router.get("", response_model=list[ModelPublic])
def list_models(principal: ModelsReader, session: SessionDep) -> list[ModelPublic]:
    host = principal.is_operator
    return [deployments.describe(session, model=m, host_details=host) for m in models.list_models(session)]


@router.get("/{name}", response_model=ModelPublic)
def show_model(name: str, principal: ModelsReader, session: SessionDep) -> ModelPublic:
    model = models.get_model(session, name=name)
    return deployments.describe(session, model=model, host_details=principal.is_operator)


def _set_desired(
    name: str,
    desired: DesiredState,
    action: str,
    request: Request,
    principal: Principal,
    session: Session,
    ctx: AppContext,
    force: bool = False,
) -> ModelPublic:
    model = models.get_model(session, name=name)
    models.record_intent(model, desired=desired, restart=action == "restart")
    details = {"force": True} if force else None
    audit.record(
        session,
        principal=principal,
        action=f"models.{action}",
        target=name,
        client_ip=request_ip(request),
        details=details,
    )
    session.commit()
    ctx.poke_supervisor(model.id, force=force)
    return deployments.describe(session, model=model)


@router.post("/{name}/start", response_model=ModelPublic)
def start_model(
    name: str,
    request: Request,
    principal: ModelsWriter,
    session: SessionDep,
    ctx: ContextDep,
    force: Annotated[bool, Query(description="start even if the preflight check fails")] = False,
) -> ModelPublic:
    return _set_desired(name, DesiredState.RUNNING, "start", request, principal, session, ctx, force=force)


@router.post("/{name}/validate")
def validate_model(
    name: str,
    _: HostReader,
    session: SessionDep,
    ctx: ContextDep,
    gpus: Annotated[str | None, Query(description="GPU selection override, e.g. 0,1")] = None,
    gpu_profile: Annotated[str | None, Query(description="pretend hardware, e.g. a100-80g")] = None,
    vram: Annotated[str | None, Query(description="pretend one GPU of this size, e.g. 24GiB")] = None,
) -> dict[str, Any]:
    """The preflight a start would run: memory breakdown, every check, the exact command."""
    from cortexctl.core.preflight import preflight  # validation: not every worker needs it

    model = models.get_model(session, name=name)
    entry = models.load_with_recipe(session, model=model)
    used = ctx.supervisor.gpus_in_use(exclude_model=model.id) if ctx.supervisor else {}
    report = preflight(
        entry.recipe,
        settings=ctx.settings,
        model_id=model.id,
        used_gpus=used,
        select_gpus=gpus,
        gpu_profile=gpu_profile,
        vram=vram,
    )
    return report.to_dict()


@router.post("/{name}/stop", response_model=ModelPublic)
def stop_model(
    name: str, request: Request, principal: ModelsWriter, session: SessionDep, ctx: ContextDep
) -> ModelPublic:
    return _set_desired(name, DesiredState.STOPPED, "stop", request, principal, session, ctx)


@router.post("/{name}/restart", response_model=ModelPublic)
def restart_model(
    name: str, request: Request, principal: ModelsWriter, session: SessionDep, ctx: ContextDep
) -> ModelPublic:
    return _set_desired(name, DesiredState.RUNNING, "restart", request, principal, session, ctx)


@router.delete("/{name}", status_code=204)
def delete_model(name: str, request: Request, principal: ModelsWriter, session: SessionDep) -> None:
    model = models.get_model(session, name=name)
    models.delete_model(session, model=model)
    audit.record(
        session, principal=principal, action="models.delete", target=name, client_ip=request_ip(request)
    )
    session.commit()


@router.get("/{name}/logs", response_model=ModelLogs)
def model_logs(
    name: str,
    _: HostReader,
    session: SessionDep,
    ctx: ContextDep,
    replica: Annotated[int, Query(ge=0)] = 0,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> ModelLogs:
    model = models.get_model(session, name=name)
    logs = ctx.supervisor.logs(model.id, replica, tail=tail) if ctx.supervisor else None
    if logs is None:
        path = deployments.engine_log_file(ctx.settings, session=session, model=model, replica=replica)
        logs = deployments.read_tail(path, lines=tail)
    rows = models.replicas_of(session, model_id=model.id)
    diagnosis = next(
        (r.diagnosis for r in rows if r.replica_index == replica and r.diagnosis), model.diagnosis
    )
    return ModelLogs(
        name=name,
        replica=replica,
        logs=logs,
        diagnosis=diagnosis,
        crashes=deployments.crash_history(model),
    )
