"""Alembic, driven from code: upgrade to head, and tell whether the schema is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cortex_server.db.engine import database_unavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except (SQLAlchemyError, OSError) as exc:
        raise database_unavailable(engine, exc) from None


def upgrade_to_head(engine: Engine) -> None:
    try:
        command.upgrade(alembic_config(engine), "head")
    except (SQLAlchemyError, OSError) as exc:
        raise database_unavailable(engine, exc) from None
