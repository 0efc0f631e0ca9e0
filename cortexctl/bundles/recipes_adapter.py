"""The one seam between bundles and recipes: load a recipe file, register recipes in the DB."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortexctl.core.errors import Conflict
from cortexctl.core.settings import Settings
from cortexctl.recipes.loader import load_recipe_file, parse_recipe
from cortexctl.recipes.paths import store_roots
from cortexctl.recipes.schema import Recipe


def load_recipe(path: Path) -> Recipe:
    return load_recipe_file(path)


def register_recipes(settings: Settings, recipes: list[tuple[str, str]]) -> None:
    """Register (yaml_text, source) pairs in one DB transaction; identical re-registration is a no-op."""
    if not recipes:
        return
    from cortex_server.db.engine import check_connection, make_engine, make_session_factory, session_scope
    from cortex_server.db.migrate import upgrade_to_head

    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    try:
        check_connection(engine)
        upgrade_to_head(engine)
        with session_scope(make_session_factory(engine)) as session:
            for yaml_text, source in recipes:
                _register_one(session, yaml_text=yaml_text, source=source, roots=store_roots(settings))
    finally:
        engine.dispose()


def _register_one(session: Session, *, yaml_text: str, source: str, roots: tuple[Path, ...]) -> None:
    from cortex_server.db.models import Recipe as RecipeRow
    from cortex_server.services.recipes import create_recipe

    recipe = parse_recipe(yaml_text, source=source, roots=roots)
    existing = session.scalar(select(RecipeRow).where(RecipeRow.name == recipe.name))
    if existing is not None:
        if existing.yaml_text == yaml_text:
            return
        raise Conflict(
            f"recipe {recipe.name} already exists with different content"
            f" (from {existing.source or 'the API'})",
            fix=f"Delete or rename recipe {recipe.name} first, then import the bundle again.",
        )
    create_recipe(session, yaml_text=yaml_text, source=source, roots=roots)
