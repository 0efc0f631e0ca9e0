"""Is the database at this build's schema head? Asked by every /ready, answered without alembic.

Why: alembic (9 MiB of imports, and a scan of the migration files per call) is needed only to
migrate, which `prepare_database` does once before any worker starts. The head is the one
migration no other names as its `down_revision` (our history is linear; tests/db checks this
agrees with alembic); the database's revision is the row alembic keeps in `alembic_version`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from cortex_server.db.engine import database_unavailable

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"


@cache
def schema_head() -> str:
    revisions: dict[str, str | None] = {}
    for path in VERSIONS_DIR.glob("*.py"):
        values = _assignments(path)
        revision = values.get("revision")
        if revision is not None:
            revisions[revision] = values.get("down_revision")
    heads = set(revisions) - set(revisions.values())
    assert len(heads) == 1, f"the migrations must have one head, not {sorted(heads)}"
    return heads.pop()


def _assignments(path: Path) -> dict[str, str | None]:
    """The module-level `revision` / `down_revision` string literals of a migration file."""
    found: dict[str, str | None] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target: ast.expr | None = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        else:
            continue
        value = node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            if isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str)):
                found[target.id] = value.value
    return found


def is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return False
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (SQLAlchemyError, OSError) as exc:
        raise database_unavailable(engine, exc) from None
    return rows == [schema_head()]
