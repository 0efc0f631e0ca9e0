"""A real daemon (uvicorn in a thread, temporary SQLite home) for CLI commands that call it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from cortex_server.app import create_app
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import Settings, load_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_daemon(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a daemon listening on 127.0.0.1; pass CORTEX_HOME/CORTEX_PORT to the CLI."""
    settings = load_settings(home=tmp_path / "home", port=_free_port())
    prepare_database(settings)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "daemon did not start"
        time.sleep(0.02)
    try:
        yield settings
    finally:
        server.should_exit = True
        thread.join(timeout=10)
