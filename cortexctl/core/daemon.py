"""Daemon control from the host: start detached, wait until ready, stop, report status.

The daemon is `python -m cortexctl serve` in its own session, its pid in
$CORTEX_HOME/run/cortexd.pid. Stopping it never stops engines: they are separate
processes/containers that the next daemon re-adopts.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from cortexctl import __version__
from cortexctl.core.errors import DaemonError
from cortexctl.core.settings import Settings

PID_FILE = "cortexd.pid"
STATE_FILE = "cortexd.json"


@dataclass(frozen=True)
class DaemonStatus:
    running: bool
    pid: int | None
    url: str
    version: str | None
    database: str | None
    ready: bool
    started_at: float | None
    home: str
    service: str | None = None  # the systemd unit that runs it, when one does


def pid_file(settings: Settings) -> Path:
    return settings.run_dir / PID_FILE


def daemon_log_file(settings: Settings) -> Path:
    return settings.logs_dir / "cortexd.out"


def read_pid(settings: Settings) -> int | None:
    """The daemon's pid if the pid file names a live cortexd process (not a reused pid)."""
    try:
        pid = int(pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return pid if "cortexctl" in cmdline and "serve" in cmdline else None


def port_owner(host: str, port: int) -> str | None:
    """None if host:port can be bound, else a description of who holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return None
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({proc.name()})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def start_detached(settings: Settings, *, env_overrides: dict[str, str]) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **env_overrides, "CORTEX_HOME": str(settings.home)}
    with open(daemon_log_file(settings), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cortexctl", "serve"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # survives the SSH session that started it
            close_fds=True,
        )
    pid_file(settings).write_text(f"{proc.pid}\n")
    (settings.run_dir / STATE_FILE).write_text(json.dumps({"pid": proc.pid, "started_at": time.time()}))
    return proc.pid


def wait_ready(
    settings: Settings, pid: int, *, timeout_s: float, on_tick: Callable[[], None] | None = None
) -> None:
    """Poll /ready until it answers 200; fail early (with the log tail) if the daemon dies."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                raise DaemonError(
                    "The daemon exited during start-up:\n" + log_tail(settings),
                    fix=f"Fix the cause above; the full log is {daemon_log_file(settings)}.",
                )
            try:
                if client.get(settings.url + "/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if on_tick:
                on_tick()
            time.sleep(0.2)
    raise DaemonError(
        f"The daemon did not become ready within {timeout_s:.0f}s.",
        fix=f"See {daemon_log_file(settings)}; raise CORTEX_READY_TIMEOUT_S if the host is slow.",
    )


def log_tail(settings: Settings, lines: int = 15) -> str:
    try:
        text = daemon_log_file(settings).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("  " + line for line in text[-lines:])


def stop(settings: Settings, *, timeout_s: float = 20.0) -> int | None:
    """SIGTERM the daemon and wait; SIGKILL if it hangs. Returns the pid it stopped."""
    pid = read_pid(settings)
    if pid is None:
        pid_file(settings).unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(timeout=5)
    except psutil.NoSuchProcess:
        pass
    pid_file(settings).unlink(missing_ok=True)
    return pid


def status(settings: Settings, *, pid: int | None = None, service: str | None = None) -> DaemonStatus:
    """`pid`: the daemon's pid when a supervisor (systemd) knows it better than our pid file."""
    pid = pid if service is not None else read_pid(settings)
    started_at = None
    try:
        started_at = json.loads((settings.run_dir / STATE_FILE).read_text()).get("started_at")
    except (FileNotFoundError, ValueError):
        pass
    version = database = None
    ready = False
    if pid is not None:
        try:
            resp = httpx.get(settings.url + "/ready", timeout=3.0, trust_env=False)
            body = resp.json()
            ready = resp.status_code == 200
            version, database = body.get("version"), body.get("database")
        except (httpx.HTTPError, ValueError):
            pass
    return DaemonStatus(
        running=pid is not None,
        pid=pid,
        url=settings.url,
        version=version or (__version__ if pid else None),
        database=database or settings.database_kind,
        ready=ready,
        started_at=started_at if pid and service is None else None,
        home=str(settings.home),
        service=service,
    )


def status_dict(st: DaemonStatus) -> dict[str, object]:
    return asdict(st)
