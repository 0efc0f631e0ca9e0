"""The one seam to the recipes feature: load a recipe file, register recipes in the DB.

The recipes branch provides `cortexctl.recipes.loader.load_recipe_file(path)` and
`cortex_server.services.recipes.create_recipe(session, *, yaml_text, source)`. Until
those are merged, the fallbacks below do the same job with the foundation's pieces
(schema validation with file:line errors; a plain row in the `recipes` table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cortexctl.core.errors import Conflict, RecipeError
from cortexctl.core.settings import Settings
from cortexctl.core.yamldoc import YamlSyntaxError, describe_validation_error, load_yaml_file
from cortexctl.recipes.schema import Recipe


def load_recipe(path: Path) -> Recipe:
    try:
        from cortexctl.recipes.loader import load_recipe_file  # type: ignore[import-not-found]
    except ImportError:  # recipes branch not merged yet
        return _load_recipe_fallback(path)
    recipe: Recipe = load_recipe_file(path)
    return recipe


def _load_recipe_fallback(path: Path) -> Recipe:
    from pydantic import ValidationError

    try:
        doc = load_yaml_file(path)
    except (OSError, YamlSyntaxError) as exc:
        raise RecipeError(f"{path}: {exc}", fix="Fix the recipe file.") from None
    try:
        return Recipe.model_validate(doc.data)
    except ValidationError as exc:
        raise RecipeError(
            "; ".join(describe_validation_error(exc, doc)), fix="Fix the recipe file."
        ) from None


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
                _register_one(session, yaml_text=yaml_text, source=source)
    finally:
        engine.dispose()


def _register_one(session: Any, *, yaml_text: str, source: str) -> None:
    from cortex_server.db.models import Recipe as RecipeRow
    from sqlalchemy import select

    recipe = _load_recipe_fallback_text(yaml_text, source)
    existing = session.scalar(select(RecipeRow).where(RecipeRow.name == recipe.name))
    if existing is not None:
        if existing.yaml_text == yaml_text:
            return
        raise Conflict(
            f"recipe {recipe.name} already exists with different content"
            f" (from {existing.source or 'the API'})",
            fix=f"Delete or rename recipe {recipe.name} first, then import the bundle again.",
        )
    try:
        from cortex_server.services.recipes import create_recipe  # type: ignore[import-not-found]
    except ImportError:  # recipes branch not merged yet: the same row the service would write
        session.add(
            RecipeRow(
                name=recipe.name,
                engine=recipe.spec.engine,
                served_name=recipe.spec.served_name,
                yaml_text=yaml_text,
                source=source,
            )
        )
        session.flush()
        return
    create_recipe(session, yaml_text=yaml_text, source=source)


def _load_recipe_fallback_text(yaml_text: str, source: str) -> Recipe:
    from pydantic import ValidationError

    from cortexctl.core.yamldoc import parse_yaml

    try:
        doc = parse_yaml(yaml_text, source=source)
        return Recipe.model_validate(doc.data)
    except YamlSyntaxError as exc:
        raise RecipeError(str(exc), fix="Fix the recipe in the bundle definition and re-export.") from None
    except ValidationError as exc:
        raise RecipeError(
            "; ".join(describe_validation_error(exc, doc)), fix="Fix the recipe and re-export the bundle."
        ) from None
