"""Where shipped recipes live: the source tree's recipes/, or $CORTEX_HOME/recipes after a bundle import."""

from __future__ import annotations

from pathlib import Path

from cortexctl.core.errors import NotFound
from cortexctl.core.settings import Settings

SOURCE_RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


def find_shipped_recipe(settings: Settings, name: str) -> Path:
    for folder in (SOURCE_RECIPES_DIR, settings.home / "recipes"):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise NotFound(
        f"Recipe {name!r} is not in {SOURCE_RECIPES_DIR} or {settings.home / 'recipes'}.",
        fix="Run from the CORTEX source tree, or import the bundle that carries it.",
    )
