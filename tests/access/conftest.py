"""Access-control fixtures: an in-process app (TestClient) on a prepared database, plus helpers.

What proves access control end to end runs on real daemon processes in front of the real engine
(tests/support/served_daemon.py); the in-process app serves the unit-level checks.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from cortex_server.app import create_app
from cortex_server.core.sessions import CSRF_HEADER, SESSION_COOKIE
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import Settings, load_settings
from tests.access.inference_route import add_test_inference_route
from tests.conftest import free_port
from tests.support.engine_fixtures import llama_server_bin, tiny_gguf_file  # noqa: F401 - fixtures

PEER = ("127.0.0.1", 50000)


@dataclass
class AccessEnv:
    """One daemon app with the local operator token; helpers to mint keys, orgs, users, sessions."""

    app: FastAPI
    client: TestClient
    settings: Settings
    admin_token: str
    admin_password: str
    secrets: list[str] = field(default_factory=list)  # every secret minted, for the log-grep test

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.client.request(method, path, headers=self.auth(self.admin_token), **kwargs)
        assert resp.status_code < 300, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def key(self, name: str, scopes: list[str], *, org: str | None = None, **extra: Any) -> str:
        body = {"name": name, "scopes": scopes, **extra, **({"org": org} if org else {})}
        key: str = self.admin("POST", "/admin/keys", json=body)["key"]
        self.secrets.append(key)
        return key

    def org(self, name: str, **limits: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/admin/orgs", json={"name": name, **limits})
        return result

    def user(self, username: str, role: str, *, org: str | None = None) -> str:
        password = f"pw-{username}-correct-horse-battery"
        body = {"username": username, "role": role, "password": password, **({"org": org} if org else {})}
        self.admin("POST", "/admin/users", json=body)
        self.secrets.append(password)
        return password

    def login(self, username: str, password: str, *, client: TestClient | None = None) -> tuple[str, str]:
        """(session cookie value, csrf token); leaves no cookie in the shared client's jar."""
        c = client or self.client
        resp = c.post("/auth/login", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        cookie = resp.cookies[SESSION_COOKIE]
        c.cookies.clear()
        return cookie, resp.json()["csrf_token"]

    @staticmethod
    def session_headers(cookie: str, csrf: str | None = None) -> dict[str, str]:
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        if csrf is not None:
            headers[CSRF_HEADER] = csrf
        return headers


def make_env(home: Path, *, peer: tuple[str, int] = PEER, **overrides: Any) -> Iterator[AccessEnv]:
    settings = load_settings(home=home, supervise=False, **overrides)
    boot = prepare_database(settings)
    assert boot.admin_password is not None
    app = create_app(settings)
    add_test_inference_route(app)
    with TestClient(app, client=peer) as client:
        yield AccessEnv(
            app=app,
            client=client,
            settings=settings,
            admin_token=settings.admin_token_file.read_text().strip(),
            admin_password=boot.admin_password,
            secrets=[boot.admin_password, settings.admin_token_file.read_text().strip()],
        )


@pytest.fixture
def env(cortex_home: Path) -> Iterator[AccessEnv]:
    yield from make_env(cortex_home)


@pytest.fixture
def env_db(cortex_home: Path, database_url: str) -> Iterator[AccessEnv]:
    """The same on SQLite and (when configured) PostgreSQL."""
    yield from make_env(cortex_home, database_url=database_url)


# ---- real daemon processes: tests/support/served_daemon.py (`cortexctl up`, real engine) ----


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of our own (never the shared one), so a test may kill it."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
