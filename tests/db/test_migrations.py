from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, select, text

from cortex_server.db.engine import make_engine, make_session_factory, session_scope
from cortex_server.db.migrate import current_revision, head_revision, upgrade_to_head
from cortex_server.db.models import ApiKey, Base, Organization
from cortex_server.db.schema_version import is_current, schema_head
from tests.access.conftest import make_env

EXPECTED_TABLES = {
    "organizations",
    "users",
    "api_keys",
    "models",
    "model_replicas",
    "recipes",
    "usage_records",
    "chat_sessions",
    "chat_messages",
    "audit_log",
}


def test_migrations_from_empty_reach_head_and_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert not is_current(engine)
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision() == schema_head()  # /ready's light head is alembic's
    assert is_current(engine)
    tables = set(inspect(engine).get_table_names())
    assert EXPECTED_TABLES <= tables
    # every column the ORM declares exists in the migrated schema
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        migrated = {c["name"] for c in insp.get_columns(table.name)}
        assert {c.name for c in table.columns} <= migrated, table.name
    upgrade_to_head(engine)  # idempotent
    with engine.begin() as conn:  # a database one migration behind (a newer one would be too)
        conn.execute(text("UPDATE alembic_version SET version_num = '0005_structure_model_intent'"))
    assert not is_current(engine)
    engine.dispose()


def test_timestamps_round_trip_as_utc_and_json_columns_work(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with session_scope(factory) as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        session.add(
            ApiKey(
                org_id=org.id,
                name="k",
                prefix="sk-",
                key_hash="h" * 64,
                scopes=["inference"],
                expires_at=expires,
            )
        )
    with session_scope(factory) as session:
        key = session.scalar(select(ApiKey))
        assert key is not None
        assert key.expires_at == expires and key.expires_at.tzinfo is not None
        assert key.scopes == ["inference"]
        assert key.created_at.tzinfo is not None
    engine.dispose()


def test_sqlite_uses_wal(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_ready_says_migrations_pending_when_the_database_is_behind(cortex_home: Path) -> None:
    with contextmanager(make_env)(cortex_home) as env:
        assert env.client.get("/ready").status_code == 200
        with env.app.state.cortex.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0005_structure_model_intent'"))
        behind = env.client.get("/ready")
    assert behind.status_code == 503 and behind.json()["reason"] == "migrations pending", behind.text
