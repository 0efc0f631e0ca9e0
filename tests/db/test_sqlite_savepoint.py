"""SQLite: a SAVEPOINT (session.begin_nested) inside a session does not commit early.

pysqlite begins its transactions lazily, so a SAVEPOINT issued first started a
transaction of its own that its RELEASE committed: a recipe created with
`create_recipe` (which uses begin_nested) was visible to other connections, and
survived a crash, before the session committed. db/engine.py lets SQLAlchemy emit BEGIN.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.db.models import Recipe

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: savepoint
spec:
  engine: llamacpp
  served_name: savepoint
  model:
    path: m.gguf
"""


def _add(session) -> None:  # type: ignore[no-untyped-def]
    with session.begin_nested():  # what the services do to catch a unique-name race
        session.add(Recipe(name="savepoint", engine="llamacpp", served_name="savepoint", yaml_text=RECIPE))


def _count(factory) -> int:  # type: ignore[no-untyped-def]
    with factory() as other:
        return int(other.scalar(select(func.count()).select_from(Recipe)) or 0)


def test_rows_added_under_a_savepoint_stay_uncommitted_until_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cortex.db'}")
    try:
        upgrade_to_head(engine)
        factory = make_session_factory(engine)
        session = factory()
        _add(session)
        session.flush()
        assert _count(factory) == 0  # another connection sees nothing yet
        session.rollback()
        session.close()
        assert _count(factory) == 0  # and the rollback really discarded it

        with factory() as session:
            _add(session)
            session.commit()
        assert _count(factory) == 1
    finally:
        engine.dispose()
