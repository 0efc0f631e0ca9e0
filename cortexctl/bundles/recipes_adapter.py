"""The one seam between bundles and the recipes database: one session, committed with the ledger.

Why: recipes used to be committed before the ledger entry, so a crash at the commit point
rolled the files back but left a row pointing at a file that no longer existed. Now the
import opens one `RecipeSession`, checks names and sha256 pins, applies the recipes
through the server's recipes service (`apply_recipe`, the same insert-or-update every
caller uses) without committing, moves the files, writes the ledger (the commit point),
and only then commits the session. A crash before the ledger write loses the
uncommitted rows with the files; a crash between the ledger write and the DB commit is
finished by recovery, which applies the journalled recipe files again (idempotent).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from cortexctl.bundles.errors import refused
from cortexctl.bundles.manifest import Item
from cortexctl.core.errors import CortexError
from cortexctl.core.settings import Settings
from cortexctl.recipes.loader import load_recipe_file, parse_recipe
from cortexctl.recipes.paths import store_roots
from cortexctl.recipes.schema import Recipe

log = logging.getLogger(__name__)


def load_recipe(path: Path) -> Recipe:
    return load_recipe_file(path)


class RecipeSession:
    """A DB session for one import: `check_*`, `apply`, then `commit` (or `rollback`)."""

    def __init__(self, settings: Settings) -> None:
        from cortex_server.db.engine import check_connection, make_engine, make_session_factory
        from cortex_server.db.migrate import upgrade_to_head

        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self._engine = make_engine(settings.effective_database_url)
        try:
            check_connection(self._engine)
            upgrade_to_head(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self.session = make_session_factory(self._engine)()

    def __enter__(self) -> RecipeSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()  # rolls back anything not committed
        self._engine.dispose()

    def _rows(self) -> list[Any]:
        from cortex_server.services.recipes import list_recipes

        return list_recipes(self.session)

    def check_names(self, recipes: list[tuple[Item, Recipe, str, Path]], *, replace: bool) -> None:
        """A recipe of the same name with other content is replaced only if this home's bundles own it."""
        rows = {r.name: r for r in self._rows()}
        for item, recipe, text, final in recipes:
            row = rows.get(recipe.name)
            if row is None or row.yaml_text == text or row.source == str(final) or replace:
                continue
            raise refused(
                item.label,
                f"recipe {recipe.name} already exists with different content "
                f"(from {row.source or 'the API'})",
                fix=f"Pass --replace to replace it, or delete or rename recipe {recipe.name} first.",
            )

    def check_pins(self, written: dict[Path, Item], bundle_recipes: set[str]) -> None:
        """No model the bundle writes may break another recipe's sha256 pin (even with --replace)."""
        models_dir = self.settings.models_dir.absolute()
        for row in self._rows():
            if row.name in bundle_recipes:
                continue
            try:
                recipe = parse_recipe(row.yaml_text, source=row.source or f"recipe {row.name}")
            except CortexError:
                continue  # an invalid stored recipe pins nothing we can read
            model = recipe.spec.model
            item = written.get(model.resolve(models_dir))
            if item is not None and model.sha256 and model.sha256 != item.sha256:
                raise refused(
                    item.label,
                    f"would break recipe {row.name}, which pins {model.path} to sha256 {model.sha256} "
                    f"(the bundle's file is {item.sha256})",
                    fix=f"Update or delete recipe {row.name} first (`cortexctl recipe apply -f FILE`), "
                    "then retry.",
                )

    def apply(self, texts: list[tuple[str, str]], *, actor: str = "bundle-import") -> None:
        """(yaml_text, source) pairs through the recipes service (the one insert-or-update path,
        audited as the admin API's writes are, by `actor`); flushed, not committed."""
        from cortex_server.services.recipes import register_recipe

        for text, source in texts:
            _, outcome = register_recipe(
                self.session, yaml_text=text, source=source, roots=store_roots(self.settings), actor=actor
            )
            log.info("recipe from %s: %s", source, outcome)
        self.session.flush()

    def commit(self) -> None:
        self.session.commit()


def register_recipe_files(settings: Settings, paths: list[Path]) -> None:
    """Apply installed recipe files and commit (recovery of an import committed in the ledger)."""
    if not paths:
        return
    with RecipeSession(settings) as db:
        db.apply([(p.read_bytes().decode("utf-8"), str(p)) for p in paths if p.is_file()])
        db.commit()


def register_recipes(settings: Settings, recipes: list[tuple[str, str]]) -> None:
    """Register (yaml_text, source) pairs in one DB transaction (tests and tools)."""
    if not recipes:
        return
    with RecipeSession(settings) as db:
        db.apply(recipes)
        db.commit()
