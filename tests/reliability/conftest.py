"""Reliability fixtures: private PostgreSQL and Redis servers on free loopback ports (a test may stop,
kill or freeze them), a real llama-server on the tiny model, and the load profile (`--long`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port
from tests.gateway.gateway_support import LLAMA_SERVER, LlamaServer, PrivatePostgres, pg_binaries
from tests.support.tiny_gguf import write_tiny_llama

needs_llama = pytest.mark.skipif(
    not LLAMA_SERVER.exists(), reason=f"no llama-server binary at {LLAMA_SERVER}"
)
needs_pg_binaries = pytest.mark.skipif(pg_binaries() is None, reason="no initdb/pg_ctl (postgresql server)")


@dataclass(frozen=True)
class Profile:
    """How hard and how long: the short one runs in CI, `--long` on demand."""

    name: str
    clients: int
    load_s: float  # load before the fault
    fault_s: float  # how long a fault lasts


SHORT = Profile("short", clients=8, load_s=1.5, fault_s=4.0)
LONG = Profile("long", clients=32, load_s=15.0, fault_s=20.0)


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> Profile:
    return LONG if request.config.getoption("--long") else SHORT


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl), on a free port."""
    root = Path(tempfile.mkdtemp(prefix="cortex-pg-"))
    root.chmod(0o755)  # the postgres user must reach it
    pg = PrivatePostgres(root).init()
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop()
        except Exception:
            pass
        shutil.rmtree(root, ignore_errors=True)


class PrivateRedis:
    """A redis-server of the test's own on a free port; `freeze()`/`thaw()` stall it for real (SIGSTOP)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.root)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.thaw()
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    r = PrivateRedis(tmp_path).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf", n_embd=32)


@pytest.fixture
def llama_server(tmp_path: Path, tiny_gguf: Path) -> Iterator[Callable[[str], LlamaServer]]:
    started: list[LlamaServer] = []

    def start(alias: str) -> LlamaServer:
        server = LlamaServer(model=tiny_gguf, alias=alias, log_path=tmp_path / f"llama-{len(started)}.log")
        started.append(server.start())
        return server

    try:
        yield start
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A small real filesystem (tmpfs of N bytes) to fill up; needs root (CAP_SYS_ADMIN)."""
    mounts: list[Path] = []

    def mount(size_bytes: int) -> Path:
        where = tmp_path / f"tmpfs{len(mounts)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        mounts.append(where)
        return where

    try:
        yield mount
    finally:
        for where in mounts:
            subprocess.run(["umount", "-l", str(where)], check=False)
