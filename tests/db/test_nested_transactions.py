"""`session.begin_nested()` nests in the caller's transaction on SQLite as on PostgreSQL.

On SQLite, pysqlite used to send a bare SAVEPOINT before the session's first write; its
RELEASE committed at once, so the recipes service's nested insert survived the caller's
rollback (cortex_server/db/engine.py says how the engine prevents it). Both databases
run every test here (`database_url`: SQLite always, PostgreSQL when configured).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.db.models import Organization
from cortex_server.db.models import Recipe as RecipeRow
from cortex_server.services.recipes import create_recipe
from cortexctl.core.errors import Conflict

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
spec:
  engine: llamacpp
  served_name: {name}
  model:
    path: model.gguf
"""


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    return [tmp_path]


def _names(engine: Engine) -> list[str]:
    """What another connection sees: only committed rows."""
    with Session(engine) as fresh:
        return list(fresh.scalars(select(RecipeRow.name).order_by(RecipeRow.name)))


def test_a_nested_insert_is_not_committed_before_the_outer_commit(engine: Engine, roots: list[Path]) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        create_recipe(
            session, yaml_text=RECIPE.format(name="first"), roots=roots
        )  # the session's first write
        assert _names(engine) == []  # the savepoint's RELEASE committed nothing
        session.rollback()
    assert _names(engine) == []


def test_a_failing_nested_insert_rolls_back_to_its_savepoint_only(engine: Engine, roots: list[Path]) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        create_recipe(session, yaml_text=RECIPE.format(name="kept"), roots=roots)
        session.commit()
    with factory() as session:
        session.add(Organization(name="outer-write"))  # pending: flushed by begin_nested
        with pytest.raises(IntegrityError):
            with session.begin_nested():
                session.add(RecipeRow(name="kept", engine="llamacpp", served_name="dup", yaml_text="x"))
        # the failed nested insert is gone, the outer transaction goes on, and nothing is committed yet
        assert session.scalar(select(Organization.name).where(Organization.name == "outer-write"))
        assert _names(engine) == ["kept"]
        create_recipe(session, yaml_text=RECIPE.format(name="second"), roots=roots)
        session.commit()
    assert _names(engine) == ["kept", "second"]
    with Session(engine) as fresh:
        assert fresh.scalar(select(Organization.name).where(Organization.name == "outer-write"))


def test_a_nested_conflict_as_the_first_write_leaves_nothing_behind(
    engine: Engine, roots: list[Path]
) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        create_recipe(session, yaml_text=RECIPE.format(name="taken"), roots=roots)
        session.commit()
    with factory() as session:
        with pytest.raises(IntegrityError):
            with session.begin_nested():  # no write before it: the case pysqlite got wrong
                session.add(RecipeRow(name="other", engine="llamacpp", served_name="o", yaml_text="x"))
                session.flush()
                session.add(RecipeRow(name="taken", engine="llamacpp", served_name="t", yaml_text="x"))
        assert _names(engine) == ["taken"]  # "other" rolled back with its savepoint, not committed
        session.rollback()
    assert _names(engine) == ["taken"]
    with factory() as session, pytest.raises(Conflict):
        create_recipe(session, yaml_text=RECIPE.format(name="taken"), roots=roots)
