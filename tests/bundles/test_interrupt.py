"""A power cut at every step of an import: recovery leaves the state before it or after it, never between.

The child imports with a relative CORTEX_HOME and is killed (`os._exit`) at one step;
recovery then runs from another folder, as `cortexctl doctor` does. Before the ledger
commit everything is rolled back, database rows included; after it the import is
finished (its recipe rows registered). No staging is left either way, and the import
can simply be run again.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cortexctl.bundles.install import import_bundle, list_imports, tidy_imports
from cortexctl.bundles.ledger import Ledger
from cortexctl.bundles.recipes_adapter import register_recipes
from cortexctl.bundles.transaction import STAGING_PREFIX
from cortexctl.core.settings import Settings, load_settings
from tests.bundles.helpers import RECIPE, snapshot

STEPS = ["staging", "staged", "moved-0", "moved-1", "moved-2", "moved-3", "moved-4", "applied", "committed"]


class _CutDuringStaging:
    """A Progress that cuts the power once the first item's bytes are in staging."""

    def start(self, label: str, total: int) -> None:
        self.seen = 0

    def advance(self, n: int) -> None:
        self.seen += 1
        if self.seen == 2:
            os._exit(17)

    def finish(self) -> None:
        pass


def _child(bundle: str, workdir: str, step: str, database_url: str | None) -> None:
    os.chdir(workdir)  # relative paths from here on: the journal must still be absolute
    db = {"database_url": database_url} if database_url else {}

    def cut(at: str) -> None:
        if at == step:
            os._exit(17)

    import_bundle(
        Path(bundle),
        settings=load_settings(home=Path("home"), **db),
        engine_cache_dir=Path("cache/cortex"),
        allow_unsigned=True,
        replace=True,
        progress=_CutDuringStaging() if step == "staging" else None,
        checkpoint=cut,
    )


def _rows(settings: Settings) -> list[tuple[str, str | None]]:
    from cortex_server.db.engine import make_engine
    from cortex_server.db.models import Recipe

    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as s:
            return sorted((r.name, r.source) for r in s.scalars(select(Recipe)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("step", STEPS)
def test_a_cut_at_each_step_recovers_to_before_or_after(step: str, make_bundle: Any, tmp_path: Path) -> None:
    _cut_and_recover(step, make_bundle(compression="none"), tmp_path, None)


@pytest.mark.parametrize("step", ["applied", "committed"])
def test_the_commit_point_holds_on_each_database(
    step: str, database_url: str, make_bundle: Any, tmp_path: Path
) -> None:
    """Either side of the ledger commit, on SQLite and on PostgreSQL: rows follow the ledger."""
    _cut_and_recover(step, make_bundle(compression="none"), tmp_path, database_url)


def _cut_and_recover(step: str, bundle: Any, tmp_path: Path, database_url: str | None) -> None:
    settings = load_settings(
        home=tmp_path / "home", **({"database_url": database_url} if database_url else {})
    )
    cache = tmp_path / "cache" / "cortex"
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "model.gguf").write_bytes(b"the previous model")
    register_recipes(settings, [(RECIPE.format(name="existing", model="model.gguf"), "by-hand")])
    before = snapshot(settings.home), snapshot(cache), _rows(settings)

    proc = multiprocessing.get_context("fork").Process(
        target=_child, args=(str(bundle.path), str(tmp_path), step, database_url)
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 17
    assert Ledger(settings.home).journal_path.exists()

    done = tidy_imports(settings, engine_cache_dir=cache)  # from this folder, not the child's
    committed = step == "committed"
    assert done and done[0].startswith("finished committed" if committed else "rolled back"), done
    assert not Ledger(settings.home).journal_path.exists()
    for root in (settings.home, cache):
        assert not [p for p in root.rglob(f"{STAGING_PREFIX}*")] if root.exists() else True
    if committed:
        recipe_file = str(settings.home.absolute() / "recipes" / "demo.yaml")
        assert ("demo", recipe_file) in _rows(settings)
        assert (settings.models_dir / "model.gguf").read_bytes() != b"the previous model"
        assert [e.bundle_id for e in list_imports(settings)] == [bundle.bundle_id]
    else:
        assert (snapshot(settings.home), snapshot(cache), _rows(settings)) == before
        assert list_imports(settings) == []

    again = import_bundle(
        bundle.path, settings=settings, engine_cache_dir=cache, allow_unsigned=True, replace=True
    )
    assert again.status == ("already-imported" if committed else "imported")
    assert "demo" in [name for name, _ in _rows(settings)]


def test_stale_staging_without_a_journal_is_removed_by_the_next_import_and_doctor(
    make_bundle: Any, settings: Settings, engine_cache: Path
) -> None:
    Ledger(settings.home).dir.mkdir(parents=True)  # an import ran here once, and was killed
    stale = [settings.models_dir / f"{STAGING_PREFIX}dead1", engine_cache / f"{STAGING_PREFIX}dead2" / "new"]
    for path in stale:
        path.mkdir(parents=True)
        (path / "blob").write_bytes(b"x" * 1000)
    assert any(
        "removed stale staging" in line for line in tidy_imports(settings, engine_cache_dir=engine_cache)
    )
    assert not any(p.exists() for p in stale)
    stale[0].mkdir(parents=True)
    result = import_bundle(
        make_bundle().path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True
    )
    assert result.recovered and "stale staging" in result.recovered and not stale[0].exists()


def test_doctor_reports_what_it_tidied(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cortexctl.core.doctor import OK, check_bundle_staging

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert check_bundle_staging(settings).detail == "no interrupted import, no stale staging"
    assert not settings.home.exists()  # a home where no import ran is not even created
    Ledger(settings.home).dir.mkdir(parents=True)
    stale = tmp_path / "xdg" / "cortex" / f"{STAGING_PREFIX}dead"
    stale.mkdir(parents=True)
    check = check_bundle_staging(settings)
    assert check.status == OK and f"removed stale staging {stale}" in check.detail and not stale.exists()
