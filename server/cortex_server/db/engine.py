"""Engine and session factory for SQLite (embedded, WAL) and PostgreSQL.

SQLite and SAVEPOINTs: pysqlite (in its default, legacy transaction mode) opens a
transaction lazily, only before INSERT/UPDATE/DELETE. A `session.begin_nested()` taken
before the session's first write therefore sent a bare SAVEPOINT, which SQLite treats as
the start of a transaction of its own, and its RELEASE committed at once: the recipes
service's nested insert was durable before the caller's commit, and a rollback of the
outer transaction kept the row. `_sqlite_begin_before_savepoint` applies SQLAlchemy's
pysqlite recipe (emit our own BEGIN) where it matters: right before a SAVEPOINT with no
transaction open, it emits `BEGIN IMMEDIATE`, so the savepoint nests in a real transaction
that only the session's commit ends. IMMEDIATE because a savepoint is taken to write: it
takes the write lock now, waiting out busy_timeout, rather than failing later on a read
snapshot another writer made stale. Every other transaction keeps pysqlite's lazy begin
(the recipe's BEGIN on every transaction would turn read-then-write sessions, which
several daemon threads run at once, into "database is locked" errors on stale snapshots).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from cortexctl.core.errors import DatabaseUnavailable


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_before_savepoint(conn: Connection, _name: str | None) -> None:
    """Open the real transaction a SAVEPOINT must nest in (see the module docstring)."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        cursor = dbapi.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable (URL without password) if the DB cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyError, OSError) as exc:
        raise database_unavailable(engine, exc) from None


DB_RETRY_AFTER_S = 2  # Retry-After of a 503 while the database is unreachable
# SQLSTATEs that mean "the server is not there for us", not "the query is wrong": connection
# exceptions (class 08), the server shutting down (57P01-57P03), too many connections
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_connectivity_error(exc: BaseException) -> bool:
    """Did this fail because the database could not be reached (not because of the query)?

    Only these may fall back to last-known-good state: any answer from the database, even an
    error, is authoritative."""
    if isinstance(exc, PoolTimeout | OSError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return str(state).startswith("08") or state in _UNREACHABLE_STATES
    if type(orig).__module__.startswith("sqlite3"):
        return "unable to open" in str(orig)
    return True  # psycopg without a SQLSTATE: the connection failed before the server answered


def database_unavailable(engine: Engine, exc: BaseException) -> DatabaseUnavailable:
    url = engine.url.render_as_string(hide_password=True)
    reason = (
        str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if str(exc).strip()
        else type(exc).__name__
    )
    return DatabaseUnavailable(
        f"Cannot reach the database at {url}: {reason}",
        fix="Check that the database server is running and CORTEX_DATABASE_URL is right, then retry.",
        details={"retry_after_s": DB_RETRY_AFTER_S},
    )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
