"""The supervisor lease: one holder per model, freed when the holder's session dies.

PostgreSQL: each daemon's leases are advisory locks on its own session; the test kills the
holder's session for real (`pg_terminate_backend`, what PostgreSQL does when the holder's
connection drops) and the other daemon's next refresh takes the model over. SQLite: a flock
beside the database file, freed when its holder closes it (or its process dies).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from cortex_server.services.supervisor_lease import NAMESPACE, FileLease, LeaseUnavailable, PostgresLeases
from tests.conftest import _fresh_postgres_database


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    import os

    from tests.conftest import PG_URL_ENV

    if not os.environ.get(PG_URL_ENV):
        pytest.skip(f"{PG_URL_ENV} not set")
    for url in _fresh_postgres_database():
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def holders(engine: Engine, model_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns "
                    "AND objid = :id AND granted AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                ),
                {"ns": NAMESPACE, "id": model_id},
            ).scalar_one()
        )


@pytest.mark.postgres
def test_one_holder_per_model_and_takeover_when_its_session_dies(pg_engine: Engine) -> None:
    a, b = PostgresLeases(engine=pg_engine), PostgresLeases(engine=pg_engine)
    try:
        assert a.refresh([1, 2]) == {1, 2}
        assert b.refresh([1, 2, 3]) == {3}  # 1 and 2 are A's; 3 was free
        assert a.refresh([1, 2, 3]) == {1, 2}  # renewal keeps A's, 3 is B's now
        assert holders(pg_engine, 1) == 1 and holders(pg_engine, 3) == 1
        assert a._conn is not None
        pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with pg_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        # pg_terminate_backend only signals: the session ends (and frees its locks) a moment later
        deadline = time.monotonic() + 10
        while holders(pg_engine, 1):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert b.refresh([1, 2, 3]) == {1, 2, 3}  # the dead holder's locks were freed
        with pytest.raises(LeaseUnavailable):  # A notices it lost its session: it drives nothing
            a.refresh([1, 2, 3])
        assert a.held == set()
        assert a.refresh([1, 2, 3]) == set()  # a new session, but B holds them all now
        assert b.refresh([1, 3]) == {1, 3}  # model 2 deleted: released
        assert a.refresh([1, 2, 3]) == {2}
    finally:
        a.close()
        b.close()
    assert holders(pg_engine, 1) == 0  # closing ends the session: nothing left held


def test_sqlite_one_daemon_supervises_until_it_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "cortex.db.supervisor.lock"
    a, b = FileLease(path), FileLease(path)
    try:
        assert a.refresh([1, 2]) == {1, 2}
        assert b.refresh([1, 2]) == set()
        a.close()
        assert b.refresh([1, 2, 5]) == {1, 2, 5}
        assert a.refresh([1]) == set()
    finally:
        a.close()
        b.close()


def test_an_unreachable_database_is_an_error_not_an_empty_lease() -> None:
    """Unreachable ≠ "another daemon holds it": the tick fails and the registry stays as it was."""
    from tests.conftest import free_port

    engine = create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2}
    )
    leases = PostgresLeases(engine=engine)
    try:
        with pytest.raises(LeaseUnavailable, match="supervisor leases unavailable"):
            leases.refresh([1])
    finally:
        leases.close()
        engine.dispose()
