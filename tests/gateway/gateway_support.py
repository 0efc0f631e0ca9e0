"""Helpers for the gateway tests: a tiny real GGUF, real llama-server processes, a live daemon."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from cortex_server.app import create_app
from cortex_server.context import AppContext
from cortex_server.services.prepare import prepare_database
from cortex_server.services.registry import ReplicaEndpoint, ServedModel
from cortexctl.core.settings import Settings
from cortexctl.engines.llamacpp.binary import built_llama_server

LLAMA_SERVER = built_llama_server()  # where install.sh builds it (the engines module owns the path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One real llama-server process on a loopback port."""

    def __init__(self, *, model: Path, alias: str, log_path: Path, embeddings: bool = False) -> None:
        self.model, self.alias, self.log_path, self.embeddings = model, alias, log_path, embeddings
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> LlamaServer:
        args = [
            str(LLAMA_SERVER), "-m", str(self.model), "--alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "-c", "8192", "-np", "4", "-t", "1", "--chat-template", "chatml", "--no-warmup",
        ]  # fmt: skip
        if self.embeddings:
            args += ["--embeddings", "--pooling", "mean"]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log_path.read_text()[-2000:]}")
            if self.healthy():
                return
            time.sleep(0.1)
        raise TimeoutError(f"llama-server not ready: {self.log_path.read_text()[-2000:]}")

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base_url + "/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def served_model(name: str, *servers: LlamaServer, request_defaults: dict | None = None) -> ServedModel:
    return ServedModel(
        served_name=name,
        engine="llamacpp",
        state="running",
        request_defaults=request_defaults or {},
        request_timeout_s=60.0,
        connect_timeout_s=2.0,
        created=1_700_000_000,
        replicas=[
            ReplicaEndpoint(model_id=1, model_name=name, replica_index=i, base_url=s.base_url, healthy=True)
            for i, s in enumerate(servers)
        ],
    )


@dataclass
class LiveDaemon:
    settings: Settings
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    api_key: str

    @property
    def base_url(self) -> str:
        return f"{self.settings.url}/v1"

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.cortex
        return ctx

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        task = self.ctx.usage_writer._task  # the writer runs on the daemon's loop
        assert task is not None
        return task.get_loop()

    def flush_usage(self) -> None:
        """Push queued usage rows to the DB (or spool) now, from the test's thread."""
        asyncio.run_coroutine_threadsafe(self.ctx.usage_writer.flush(), self.loop).result(30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_daemon(home: Path, **overrides: object) -> LiveDaemon:
    """The real daemon app (migrations, bootstrap, lifespan) under uvicorn in a background thread.

    The tests put replicas into the registry themselves, so the supervisor (which would publish
    the DB's view, with no models) is off unless a test asks for it.
    """
    overrides.setdefault("supervise", False)
    settings = Settings(home=home, port=free_port(), **overrides)  # type: ignore[arg-type]
    prepare_database(settings)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cortexd-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the daemon did not start")
        time.sleep(0.02)
    key = settings.admin_token_file.read_text().strip()
    return LiveDaemon(settings=settings, app=app, server=server, thread=thread, api_key=key)


def pg_binaries() -> Path | None:
    """The PostgreSQL server binaries: `pg_config --bindir`, else Debian's versioned layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    return next((path for path in candidates if (path / "initdb").exists()), None)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temp dir, on its own port, that a test may stop and start."""

    def __init__(self, root: Path) -> None:
        self.bin = pg_binaries()
        assert self.bin is not None
        self.data = root / "pgdata"
        self.sock = root / "pgsock"
        self.port = free_port()
        self.log = root / "pg.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb/postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def init(self) -> PrivatePostgres:
        self.sock.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.sock, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
