"""Recipes in the database: validated with the CLI's loader, stored verbatim.

The YAML text is kept exactly as applied, so `export_recipe` gives back the same
bytes; the columns beside it (engine, served name) are derived for listings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cortex_server.db.models import Model, Organization
from cortex_server.db.models import Recipe as RecipeRow
from cortex_server.services import audit
from cortexctl.core.errors import Conflict, InvalidRequest, NotFound
from cortexctl.recipes.loader import parse_recipe
from cortexctl.recipes.schema import Recipe

log = logging.getLogger(__name__)

API_SOURCE = "<api>"  # the source of YAML that came without a file name
DEFAULT_ORG = "default"  # whose audit log holds appliance-wide writes (core/auth.DEFAULT_ORG)


def recipe_of(row: RecipeRow, *, roots: Sequence[Path] | None = None) -> Recipe:
    """The parsed recipe of a stored row; with `roots`, its files are checked again too."""
    return parse_recipe(row.yaml_text, source=row.source or f"recipe {row.name}", roots=roots)


def create_recipe(
    session: Session, *, yaml_text: str, source: str | None = None, roots: Sequence[Path]
) -> RecipeRow:
    """Validate (files confined to `roots`, paths.store_roots) and store a new recipe."""
    recipe = parse_recipe(yaml_text, source=source or API_SOURCE, roots=roots)
    if _find(session, recipe.name) is not None:
        raise Conflict(
            f"A recipe named {recipe.name!r} already exists.",
            fix=f"Update it: `cortexctl recipe apply -f FILE` or PUT /admin/recipes/{recipe.name}.",
            code="recipe_exists",
        )
    row = RecipeRow(
        name=recipe.name,
        engine=recipe.spec.engine,
        served_name=recipe.spec.served_name,
        yaml_text=yaml_text,
        source=source,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another daemon created it between our check and insert
        raise Conflict(f"A recipe named {recipe.name!r} already exists.", code="recipe_exists") from None
    log.info("recipe %s created (engine %s, served as %s)", row.name, row.engine, row.served_name)
    return row


def update_recipe(
    session: Session, *, name: str, yaml_text: str, source: str | None = None, roots: Sequence[Path]
) -> RecipeRow:
    row = get_recipe(session, name=name)
    recipe = parse_recipe(yaml_text, source=source or API_SOURCE, roots=roots)
    if recipe.name != name:
        raise InvalidRequest(
            f"The YAML names recipe {recipe.name!r}, not {name!r}.",
            fix="Recipes cannot be renamed: apply the new name as a new recipe, then delete the old one.",
            param="metadata.name",
        )
    row.engine = recipe.spec.engine
    row.served_name = recipe.spec.served_name
    row.yaml_text = yaml_text
    row.source = source
    session.flush()
    log.info("recipe %s updated", name)
    return row


def apply_recipe(
    session: Session, *, yaml_text: str, source: str | None = None, roots: Sequence[Path]
) -> tuple[RecipeRow, str]:
    """Insert or update by name, the one upsert path (deploy, bundle import): created/updated/unchanged.

    `roots` (paths.store_roots) confine the files the recipe names, as on every path that accepts one."""
    recipe = parse_recipe(yaml_text, source=source or API_SOURCE, roots=roots)
    row = _find(session, recipe.name)
    if row is None:
        return create_recipe(session, yaml_text=yaml_text, source=source, roots=roots), "created"
    if row.yaml_text == yaml_text and row.source == source:
        return row, "unchanged"
    return update_recipe(
        session, name=recipe.name, yaml_text=yaml_text, source=source, roots=roots
    ), "updated"


def register_recipe(
    session: Session, *, yaml_text: str, source: str | None, roots: Sequence[Path], actor: str
) -> tuple[RecipeRow, str]:
    """`apply_recipe` for callers outside a request (the bundle importer), audited like the admin
    API's recipe writes: `recipes.create` / `recipes.update` under the default org, by `actor`."""
    row, outcome = apply_recipe(session, yaml_text=yaml_text, source=source, roots=roots)
    if outcome != "unchanged":
        audit.record_as(
            session,
            actor=actor,
            org_id=session.scalar(select(Organization.id).where(Organization.name == DEFAULT_ORG)),
            action=f"recipes.{outcome.removesuffix('d')}",
            target=row.name,
            details={"engine": row.engine, "served_name": row.served_name, "source": row.source},
        )
    return row, outcome


def get_recipe(session: Session, *, name: str) -> RecipeRow:
    row = _find(session, name)
    if row is None:
        raise NotFound(f"No recipe named {name!r}.", fix="List recipes with `cortexctl recipe list`.")
    return row


def list_recipes(session: Session) -> list[RecipeRow]:
    return list(session.scalars(select(RecipeRow).order_by(RecipeRow.name)))


def delete_recipe(session: Session, *, name: str) -> None:
    row = get_recipe(session, name=name)
    users = list(session.scalars(select(Model.name).where(Model.recipe_id == row.id).order_by(Model.name)))
    if users:
        raise Conflict(
            f"Recipe {name!r} is used by model(s): {', '.join(users)}.",
            fix="Delete those models first (`cortexctl model delete NAME`).",
            code="recipe_in_use",
        )
    session.delete(row)
    session.flush()
    log.info("recipe %s deleted", name)


def export_recipe(session: Session, *, name: str) -> str:
    """The YAML exactly as it was applied."""
    return get_recipe(session, name=name).yaml_text


def _find(session: Session, name: str) -> RecipeRow | None:
    return session.scalar(select(RecipeRow).where(RecipeRow.name == name))
