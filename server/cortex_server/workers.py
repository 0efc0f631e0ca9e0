"""`cortexctl serve --workers N`: N gateway processes on one port, one of them supervising engines.

Why: one Python process serves one core's worth of requests; a GPU host has many cores. Each
worker binds the daemon's port with SO_REUSEPORT, so the kernel spreads connections over
them. What they share:
  - the database (models, keys, usage rows) as any two daemons do;
  - rate limits and key-revocation broadcasts through Redis, which is why N > 1 needs
    CORTEX_REDIS_URL (in-process limits would each allow the full limit); revocations also go
    straight to the other workers (services/worker_peers.py), so they hold with Redis down;
  - the routing registry: worker 0 alone runs the supervisor (engines, health, model states)
    and shares its registry through a file (services/gateway/registry_mirror.py).
Each worker spools usage to its own file. The parent only starts the workers, restarts one
that dies, and stops them all on SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from typing import Any

from cortexctl.core.errors import ConfigError
from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = 1.0
MAX_DEFAULT_WORKERS = 8  # beyond that, ask: each worker holds ~100 MiB and its own DB connections


@dataclass(frozen=True)
class WorkerRole:
    index: int
    count: int

    @property
    def supervises(self) -> bool:
        return self.index == 0


def default_workers(settings: Settings) -> int:
    """`workers` if set; else every core (up to MAX_DEFAULT_WORKERS) on the scale-out setup,
    Redis and PostgreSQL; one otherwise: in-process limits cannot be shared, and SQLite takes
    one writer at a time, so more processes would only queue on it."""
    if settings.workers is not None:
        return settings.workers
    if not settings.redis_url or settings.database_kind != "postgresql":
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS))


def check_workers(settings: Settings, workers: int) -> None:
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.", fix="Use --workers 1 or more.")
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"{workers} workers need Redis: rate limits and key revocations must be shared between them.",
            fix="Set CORTEX_REDIS_URL (redis://…), or run with --workers 1.",
        )


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(settings: Settings, role: WorkerRole) -> None:
    """One worker process: the daemon app on a SO_REUSEPORT socket (see `start_worker`)."""
    without_unused_modules()
    import uvicorn

    from cortex_server.app import create_app
    from cortex_server.core.logging import configure_logging
    from cortex_server.main import server_options

    os.umask(0o077)
    configure_logging(
        level=settings.log_level,
        logs_dir=settings.logs_dir,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
    )
    if not role.supervises:
        settings = settings.model_copy(update={"supervise": False})
    app = create_app(settings, worker=role)
    options: dict[str, Any] = server_options(settings)
    sock = reuseport_socket(options.pop("host"), options.pop("port"))
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.run(sockets=[sock])


def without_unused_modules() -> None:
    """Keep out of this process what a gateway process never runs but its libraries would import:
    - httpx's command-line client: `import httpx` loads it (click, rich, pygments: ~5 MiB) whenever
      those are installed, as they are for cortexctl. The placeholder answers like httpx's own
      when they are missing.
    - pydantic.v1 (~1.7 MiB): FastAPI imports it only to check that no route uses a v1 model, and
      takes an ImportError as "none does". Nothing else here imports it."""
    if "httpx" not in sys.modules:
        placeholder = types.ModuleType("httpx._main")

        def main() -> None:
            raise RuntimeError("httpx's command-line client is not loaded in a gateway process")

        placeholder.main = main  # type: ignore[attr-defined]  # the one name httpx takes from it
        sys.modules["httpx._main"] = placeholder
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]  # None: its import raises ImportError


def serve_workers(settings: Settings, workers: int) -> None:
    """Start `workers` worker processes and keep them running until SIGTERM/SIGINT."""
    check_workers(settings, workers)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("cortexd: %d workers on %s", workers, settings.url)
    for index in range(workers):
        procs[index] = start_worker(settings, WorkerRole(index, workers))
    while not stopping:
        time.sleep(0.2)
        for index, proc in list(procs.items()):
            if not stopping and proc.poll() is not None:
                log.error("worker %d exited (code %s); restarting it", index, proc.returncode)
                time.sleep(RESTART_BACKOFF_S)
                if not stopping:
                    procs[index] = start_worker(settings, WorkerRole(index, workers))
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_worker(settings: Settings, role: WorkerRole) -> subprocess.Popen[bytes]:
    """A fresh interpreter running cortex_server.worker_main, its settings pickled through stdin:
    not multiprocessing's spawn, which re-imports the parent's main module (the cortexctl command
    line: typer, rich, click) into every worker."""
    argv = [sys.executable, "-m", "cortex_server.worker_main", str(role.index), str(role.count)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(pickle.dumps(settings))
    return proc
