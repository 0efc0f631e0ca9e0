"""/admin/recipes: list, show, export, create, update, delete — operators only.

Recipes are appliance-wide and decide what runs on the host (engine flags, the
files an engine opens), and their YAML names host paths: every route here needs
an operator (an admin of the default org), like the write routes of
/admin/models. Tenants see the models they may use through GET /v1/models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse

from cortex_server.api.deps import ContextDep, ModelsWriter, SessionDep, request_ip, require_scope
from cortex_server.core.auth import Principal
from cortex_server.db.models import Recipe as RecipeRow
from cortex_server.schemas.recipes import RecipeApply, RecipeDetail, RecipePublic
from cortex_server.services import audit, recipes
from cortexctl.core.errors import RecipeError
from cortexctl.recipes.paths import store_roots

router = APIRouter(prefix="/admin/recipes", tags=["admin: recipes"])

# Recipes name host paths: reading them is for operators (unlike models:read on /admin/models).
RecipesReader = Annotated[Principal, Depends(require_scope("models:read", operator=True))]


def _detail(row: RecipeRow, roots: Sequence[Path]) -> RecipeDetail:
    public = RecipePublic.model_validate(row).model_dump()
    try:
        parsed = recipes.recipe_of(row, roots=roots)
    except RecipeError as exc:
        # Valid when applied, not now (a template file moved, an upgrade pinned another
        # engine version): still show it, with what is wrong, so it can be fixed.
        return RecipeDetail(
            **public, description="", yaml=row.yaml_text, recipe=None, problems=exc.message.splitlines()
        )
    return RecipeDetail(
        **public,
        description=parsed.metadata.description,
        yaml=row.yaml_text,
        recipe=parsed.model_dump(mode="json", by_alias=True),
    )


@router.get("", response_model=list[RecipePublic])
def list_recipes(_: RecipesReader, session: SessionDep) -> list[RecipeRow]:
    return recipes.list_recipes(session)


@router.get("/{name}", response_model=RecipeDetail)
def show_recipe(name: str, _: RecipesReader, session: SessionDep, ctx: ContextDep) -> RecipeDetail:
    return _detail(recipes.get_recipe(session, name=name), store_roots(ctx.settings))


@router.get("/{name}/yaml", response_class=PlainTextResponse)
def export_recipe(name: str, _: RecipesReader, session: SessionDep) -> PlainTextResponse:
    return PlainTextResponse(recipes.export_recipe(session, name=name), media_type="application/yaml")


@router.post("", response_model=RecipeDetail, status_code=201)
def create_recipe(
    body: RecipeApply, request: Request, principal: ModelsWriter, session: SessionDep, ctx: ContextDep
) -> RecipeDetail:
    row = recipes.create_recipe(
        session, yaml_text=body.yaml, source=body.source, roots=store_roots(ctx.settings)
    )
    audit.record(
        session,
        principal=principal,
        action="recipes.create",
        target=row.name,
        client_ip=request_ip(request),
        details={"engine": row.engine, "served_name": row.served_name, "source": row.source},
    )
    session.commit()
    return _detail(row, store_roots(ctx.settings))


@router.put("/{name}", response_model=RecipeDetail)
def update_recipe(
    name: str,
    body: RecipeApply,
    request: Request,
    principal: ModelsWriter,
    session: SessionDep,
    ctx: ContextDep,
) -> RecipeDetail:
    row = recipes.update_recipe(
        session, name=name, yaml_text=body.yaml, source=body.source, roots=store_roots(ctx.settings)
    )
    audit.record(
        session,
        principal=principal,
        action="recipes.update",
        target=row.name,
        client_ip=request_ip(request),
        details={"engine": row.engine, "served_name": row.served_name, "source": row.source},
    )
    session.commit()
    return _detail(row, store_roots(ctx.settings))


@router.delete("/{name}", status_code=204)
def delete_recipe(name: str, request: Request, principal: ModelsWriter, session: SessionDep) -> Response:
    recipes.delete_recipe(session, name=name)
    audit.record(
        session, principal=principal, action="recipes.delete", target=name, client_ip=request_ip(request)
    )
    session.commit()
    return Response(status_code=204)
