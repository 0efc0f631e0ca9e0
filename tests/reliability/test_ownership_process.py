"""Ownership with the process runtime: two installations sharing one engine-port range each
start a model while the other runs one, and restart without touching the other's engine; a
foreign listener on an engine's port is never taken for our engine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psutil
import pytest

from cortex_server.services.lifecycle import State
from cortex_server.services.registry import ModelRegistry
from cortex_server.services.supervisor import LiveReplica, Supervisor
from cortexctl.core.settings import Settings
from cortexctl.engines.registry import get_engine
from cortexctl.runtimes.base import RunningEngine
from tests.support.engine_fixtures import llama_server_bin, tiny_gguf_file, wait_until  # noqa: F401
from tests.support.served_daemon import (
    completion,
    create_tiny_model,
    daemon_up,
    engine_port_range,
    wait_serving,
)


@pytest.mark.slow
@pytest.mark.llama
def test_two_installations_share_a_port_range_and_restart_without_touching_each_other(
    tmp_path: Path,
    llama_server_bin: Path,  # noqa: F811 - fixture
    tiny_gguf_file: Path,  # noqa: F811 - fixture
) -> None:
    ports = engine_port_range()  # the same range for both: the second must skip the first's port
    boot = {
        "llama_server_bin": llama_server_bin,
        "tiny_gguf": tiny_gguf_file,
        "CORTEX_ENGINE_PORT_RANGE": ports,
    }
    with daemon_up(tmp_path / "a", **boot) as a:
        create_tiny_model(a, tmp_path / "a")
        key_a = a.key("a")
        wait_serving(a, key_a)
        (engine_a,) = a.engine_pids()
        port_a = a.admin("GET", "/admin/models/tiny")["replicas"][0]["port"]
        with daemon_up(tmp_path / "b", **boot) as b:
            create_tiny_model(b, tmp_path / "b")
            key_b = b.key("b")
            wait_serving(b, key_b)
            (engine_b,) = b.engine_pids()
            assert b.admin("GET", "/admin/models/tiny")["replicas"][0]["port"] != port_a
            for daemon, key, other in ((b, key_b, engine_a), (a, key_a, engine_b)):
                daemon.cli.run("down", check=True)
                daemon.cli.run("up", check=True)
                wait_serving(daemon, key)
                assert psutil.Process(other).is_running()
            assert completion(a.url, key_a).status_code == 200
            assert completion(b.url, key_b).status_code == 200
            assert {engine_a, engine_b} <= {p.pid for p in psutil.process_iter()}


class _AnyKeyEngine(BaseHTTPRequestHandler):
    """A foreign server that looks like a ready llama-server and accepts any key (or none)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"status": "ok", "data": [{"id": "tiny"}], "default_generation_settings": {}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def foreign_listener() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AnyKeyEngine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def test_a_foreign_listener_on_an_allocated_port_is_not_probed_ready(
    foreign_listener: int, tmp_path: Path
) -> None:
    supervisor = Supervisor(
        settings=Settings(home=tmp_path),
        session_factory=None,  # type: ignore[arg-type] - the probe never reads the DB
        registry=ModelRegistry(),
        choose_runtime=lambda recipe: None,  # type: ignore[arg-type,return-value]
    )
    supervisor._http = httpx.AsyncClient(timeout=3, trust_env=False)
    handle = RunningEngine(runtime="process", name="x", port=foreign_listener, pid=1, api_key="our-key")
    live = LiveReplica(model_id=1, replica_index=0, engine=get_engine("llamacpp"), handle=handle)
    live.set(State.STARTING, "started")
    entry = SimpleNamespace(
        recipe=SimpleNamespace(spec=SimpleNamespace(served_name="tiny")), model=SimpleNamespace(name="tiny")
    )
    try:
        for _ in range(3):
            await supervisor._probe(live, entry)  # type: ignore[arg-type]
    finally:
        await supervisor._http.aclose()
    assert live.state != State.RUNNING and not live.trusted
    assert "accepts any key: not ours" in (live.reason or "")
