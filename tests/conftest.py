"""Project-wide fixtures: a private CORTEX_HOME, and databases on SQLite and PostgreSQL.

PostgreSQL and Redis tests run whenever CORTEX_TEST_DATABASE_URL / CORTEX_TEST_REDIS_URL
are set, and fail (never skip) if the service is then unreachable.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.strict_skips import StrictSkips

PG_URL_ENV = "CORTEX_TEST_DATABASE_URL"
REDIS_URL_ENV = "CORTEX_TEST_REDIS_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="tests/reliability: the long profile (more load, longer faults); CI runs the short one",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(StrictSkips(), "cortex-strict-skips")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's CORTEX_* settings or real home."""
    for name in list(os.environ):
        if name.startswith("CORTEX_") and name not in (PG_URL_ENV, REDIS_URL_ENV):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CORTEX_HOME", str(tmp_path / "cortex-home"))


@pytest.fixture
def cortex_home(tmp_path: Path) -> Path:
    home = tmp_path / "cortex-home"
    home.mkdir(exist_ok=True)
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


def _fresh_postgres_database() -> Iterator[str]:
    base = os.environ[PG_URL_ENV]
    name = f"cortex_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the variable is set: unreachable is a failure, not a skip
        admin.dispose()
        pytest.fail(f"{PG_URL_ENV} is set but PostgreSQL is unreachable: {exc}")
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite always, PostgreSQL when CORTEX_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not os.environ.get(PG_URL_ENV):
        pytest.skip(f"{PG_URL_ENV} not set")
    yield from _fresh_postgres_database()


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        pytest.skip(f"{REDIS_URL_ENV} not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"{REDIS_URL_ENV} is set but Redis is unreachable: {exc}")
    return url
