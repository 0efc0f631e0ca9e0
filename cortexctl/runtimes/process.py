"""The process runtime: engines as child processes in their own session.

`start_new_session=True` puts each engine in its own process group, so it survives
the daemon (a restarted daemon adopts it) and `stop` can signal the whole group.
Each engine gets a JSON pid file under `$CORTEX_HOME/run/engines/` (folder 0700,
file 0600: it also holds the engine's key, so a restarted daemon can still call the
engines it adopts); the recorded process start time guards against pid reuse when
adopting. Children this object
started are kept as `Popen`s and polled, so they never linger as zombies.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

import psutil

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.base import LaunchSpec
from cortexctl.runtimes.base import ExitInfo, RunningEngine

log = logging.getLogger(__name__)

_START_TIME_TOLERANCE_S = 1.0


class ProcessRuntime:
    name: ClassVar[str] = "process"

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def pid_dir(self) -> Path:
        return self._settings.run_dir / "engines"

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, spec: LaunchSpec) -> RunningEngine:
        binary = _resolve_binary(spec.argv[0])
        if binary is None:
            raise EngineError(
                f"cannot start {spec.name}: engine binary {spec.argv[0]!r} not found or not executable",
                fix=spec.missing_binary_fix,
            )
        current = self._record(spec.name)
        if current is not None and self._alive(current):
            raise EngineError(
                f"cannot start {spec.name}: it is already running (pid {current['pid']})",
                fix="Stop it first, or adopt it.",
            )
        argv = [binary, *spec.argv[1:]]
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.pid_dir.chmod(0o700)
        with spec.log_file.open("ab") as logf:
            logf.write(
                f"==== cortex: starting {spec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode()
            )
            logf.flush()
            try:
                proc = subprocess.Popen(  # noqa: S603 - argv built by an engine adapter, no shell
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    env=_engine_env(spec.env),
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise EngineError(f"cannot start {spec.name}: {exc}", fix=spec.missing_binary_fix) from exc
        self._children[spec.name] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            started = time.time()
        record = {
            "name": spec.name,
            "engine": spec.engine,
            "pid": proc.pid,
            "port": spec.port,
            "labels": spec.labels,
            "argv": argv,
            "log_file": str(spec.log_file),
            "started": started,
            "api_key": spec.api_key,
        }
        _write_json(self._pid_file(spec.name), record)
        log.info("started %s (pid %s, port %s)", spec.name, proc.pid, spec.port)
        return self._handle(record)

    def stop(self, handle: RunningEngine, *, timeout_s: float = 20.0) -> None:
        record = self._record(handle.name)
        pid = handle.pid if handle.pid is not None else (record or {}).get("pid")
        proc = self._children.pop(handle.name, None)
        if pid is not None and (proc is not None or (record is not None and self._alive(record))):
            _signal_group(pid, signal.SIGTERM)
            if not _wait_gone(pid, proc, timeout_s):
                log.warning("%s did not exit %.0fs after SIGTERM; sending SIGKILL", handle.name, timeout_s)
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, proc, 5.0)
            # Workers the leader left behind (vLLM spawns some) die with the group.
            _signal_group(pid, signal.SIGKILL)
        if proc is not None:
            proc.poll()
        self._pid_file(handle.name).unlink(missing_ok=True)

    def status(self, handle: RunningEngine) -> ExitInfo:
        proc = self._children.get(handle.name)
        if proc is not None and proc.pid == handle.pid:
            code = proc.poll()  # also reaps the child
            return ExitInfo(alive=code is None, exit_code=code)
        record = self._record(handle.name)
        if record is None or record.get("pid") != handle.pid:
            return ExitInfo(alive=False, exit_code=None)
        return ExitInfo(alive=self._alive(record), exit_code=None)

    def logs(self, handle: RunningEngine, *, tail: int = 200) -> str:
        record = self._record(handle.name)
        path = (
            Path(record["log_file"]) if record else self._settings.logs_dir / "engines" / f"{handle.name}.log"
        )
        if not path.is_file():
            return ""
        with path.open("r", encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=tail))

    def adopt(self) -> list[RunningEngine]:
        found: list[RunningEngine] = []
        if not self.pid_dir.is_dir():
            return found
        for path in sorted(self.pid_dir.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                log.warning("ignoring unreadable pid file %s", path)
                continue
            if self._alive(record):
                found.append(self._handle(record))
            else:
                log.info(
                    "engine %s (pid %s) is gone; removing its pid file", record.get("name"), record.get("pid")
                )
                path.unlink(missing_ok=True)
        return found

    # ---- helpers --------------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.json"

    def _record(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _alive(self, record: dict[str, Any]) -> bool:
        """The recorded pid still runs the process we started (not a reused pid, not a zombie)."""
        proc = self._children.get(str(record.get("name")))
        if proc is not None and proc.pid == record.get("pid"):
            return proc.poll() is None
        try:
            p = psutil.Process(int(record["pid"]))
            if p.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(p.create_time() - float(record["started"])) < _START_TIME_TOLERANCE_S
        except (psutil.Error, KeyError, TypeError, ValueError):
            return False

    def _handle(self, record: dict[str, Any]) -> RunningEngine:
        return RunningEngine(
            runtime=self.name,
            name=str(record["name"]),
            port=int(record["port"]),
            labels=dict(record.get("labels") or {}),
            pid=int(record["pid"]),
            api_key=record.get("api_key"),
        )


def _engine_env(extra: dict[str, str]) -> dict[str, str]:
    # Engines inherit the daemon's environment (PATH, locale, CUDA_*), never its CORTEX_*
    # settings: those hold database URLs and secret keys an engine has no business seeing.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return {**inherited, **extra}


def _resolve_binary(argv0: str) -> str | None:
    if os.sep in argv0:
        return argv0 if os.path.isfile(argv0) and os.access(argv0, os.X_OK) else None
    return shutil.which(argv0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the engine leads its own session/group
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("no permission to signal process group %s", pid)


def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        p = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if p.status() == psutil.STATUS_ZOMBIE or not p.is_running():
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically, owner-only from the first byte (the record holds the engine key)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data, indent=2))
    tmp.replace(path)
