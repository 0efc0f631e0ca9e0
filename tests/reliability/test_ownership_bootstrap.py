"""Start-up never loses the first admin password, and a Docker Engine that fails during
adoption never stops the daemon from starting.

The password is drawn when the database is first prepared; if that start fails before
`cortexctl up` shows it, the next `up` draws a new one and shows it (a flag in the DB says
whether one was ever shown)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cortexctl_cli import Cortexctl, cortexctl  # noqa: F401 - fixture
from tests.support.served_daemon import engine_port_range


class _BrokenDocker(BaseHTTPRequestHandler):
    """A Docker Engine API that answers its ping and fails everything else (500)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.endswith("/_ping"):
            self._send(200, b"OK", "text/plain")
        elif self.path.endswith("/version"):
            self._send(
                200, json.dumps({"ApiVersion": "1.43", "Version": "24.0.0"}).encode(), "application/json"
            )
        else:
            self._send(500, json.dumps({"message": "injected failure"}).encode(), "application/json")

    do_HEAD = do_GET  # noqa: N815

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Api-Version", "1.43")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args: Any) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def broken_docker(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "docker.sock"
    server = _UnixHTTPServer(str(path), _BrokenDocker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"unix://{path}"
    finally:
        server.shutdown()
        server.server_close()


def _login(cli: Cortexctl, password: str) -> int:
    resp = httpx.post(
        f"http://127.0.0.1:{cli.port}/auth/login",
        json={"username": "admin", "password": password},
        timeout=30,
        trust_env=False,
    )
    return resp.status_code


@pytest.mark.slow
def test_a_start_that_fails_before_showing_the_password_shows_a_new_one_next_time(
    cortexctl: Cortexctl,  # noqa: F811 - fixture
    broken_docker: str,
) -> None:
    cortexctl.extra_env.update(
        CORTEX_RUNTIME="process",
        CORTEX_ENGINE_PORT_RANGE=engine_port_range(),
        DOCKER_HOST=broken_docker,  # adoption fails: logged and skipped, never fatal
        CORTEX_READY_TIMEOUT_S="0.01",  # injected: `up` gives up before it shows the password
    )
    failed = cortexctl.run("up", "--json")
    assert failed.returncode != 0 and "admin_password" not in failed.stdout
    cortexctl.run("down")

    del cortexctl.extra_env["CORTEX_READY_TIMEOUT_S"]
    try:
        started = cortexctl.json("up")
        password = started["admin_password"]
        assert password, started  # never shown before: drawn again and shown now
        assert _login(cortexctl, password) == 200
        log = (cortexctl.home / "logs").rglob("*.log*")
        assert any("cannot adopt docker engines" in p.read_text(errors="replace") for p in log)

        cortexctl.run("down", check=True)
        again = cortexctl.json("up")
        assert again["admin_password"] is None  # shown once: never drawn again
        assert _login(cortexctl, password) == 200
    finally:
        cortexctl.run("down")
