"""The process runtime with real child processes (a small Python program as the 'engine')."""

from __future__ import annotations

import gc
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.base import LaunchSpec
from cortexctl.engines.llamacpp.binary import MISSING_BINARY_FIX
from cortexctl.runtimes.base import RunningEngine
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import wait_until

FAKE_ENGINE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    mode = sys.argv[1]
    print("engine starting", os.environ.get("FAKE_ENGINE_GREETING", ""), flush=True)
    print("secret:", os.environ.get("CORTEX_SECRET_KEY", "unset"), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if mode == "exit3":
        sys.exit(3)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
    if mode == "spawn":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"child {child.pid}", flush=True)
    while True:
        time.sleep(0.05)
    """
)


@pytest.fixture
def fake_engine(tmp_path: Path) -> Path:
    path = tmp_path / "fake_engine.py"
    path.write_text(FAKE_ENGINE)
    return path


def spec_for(settings: Settings, script: Path, mode: str, *, name: str = "llamacpp-model-1") -> LaunchSpec:
    return LaunchSpec(
        name=name,
        engine="llamacpp",
        argv=[sys.executable, str(script), mode],
        container_argv=[],
        image=None,
        env={"FAKE_ENGINE_GREETING": "hello"},
        host="127.0.0.1",
        port=18001,
        mounts=(),
        gpus="none",
        memory_limit_bytes=None,
        labels={"cortex.managed": "true", "cortex.model-id": "1"},
        log_file=settings.logs_dir / "engines" / f"{name}.log",
        missing_binary_fix=MISSING_BINARY_FIX,  # what the llamacpp adapter puts on its specs
    )


def test_start_status_logs_stop(
    engine_settings: Settings, fake_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTEX_SECRET_KEY", "s3cret")
    rt = ProcessRuntime(settings=engine_settings)
    handle = rt.start(spec_for(engine_settings, fake_engine, "run"))
    assert handle.runtime == "process" and handle.pid and handle.port == 18001
    assert rt.status(handle).alive
    assert wait_until(lambda: "to stderr" in rt.logs(handle), timeout_s=5)
    text = rt.logs(handle)
    assert "engine starting hello" in text  # env passed, stdout and stderr both in the log
    assert "secret: unset" in text  # the daemon's CORTEX_* settings do not leak into engines
    assert "cortex: starting llamacpp-model-1" in text
    record = json.loads((engine_settings.run_dir / "engines" / "llamacpp-model-1.json").read_text())
    assert record["pid"] == handle.pid and record["labels"]["cortex.model-id"] == "1"
    # its own session: the daemon's signals (Ctrl-C, its own death) do not reach it
    assert os.getsid(handle.pid) == handle.pid

    rt.stop(handle, timeout_s=5)
    info = rt.status(handle)
    assert not info.alive
    assert not psutil.pid_exists(handle.pid)  # reaped, not a zombie
    assert not (engine_settings.run_dir / "engines" / "llamacpp-model-1.json").exists()
    rt.stop(handle)  # idempotent


def test_exit_code_and_reaping(engine_settings: Settings, fake_engine: Path) -> None:
    rt = ProcessRuntime(settings=engine_settings)
    handle = rt.start(spec_for(engine_settings, fake_engine, "exit3"))
    assert wait_until(lambda: not rt.status(handle).alive, timeout_s=10)
    assert rt.status(handle).exit_code == 3
    assert not psutil.pid_exists(handle.pid)


def test_sigkill_after_timeout_and_whole_group(engine_settings: Settings, fake_engine: Path) -> None:
    rt = ProcessRuntime(settings=engine_settings)
    stubborn = rt.start(spec_for(engine_settings, fake_engine, "stubborn", name="a"))
    spawner = rt.start(spec_for(engine_settings, fake_engine, "spawn", name="b"))
    assert wait_until(lambda: "child " in rt.logs(spawner), timeout_s=10)
    grandchild = int(rt.logs(spawner).split("child ")[1].split()[0])
    assert wait_until(lambda: "engine starting" in rt.logs(stubborn), timeout_s=10)

    started = time.monotonic()
    rt.stop(stubborn, timeout_s=1)
    assert time.monotonic() - started < 5
    assert "ignoring SIGTERM" in rt.logs(stubborn)
    assert not rt.status(stubborn).alive

    rt.stop(spawner, timeout_s=5)
    assert wait_until(lambda: not psutil.pid_exists(grandchild) or _zombie(grandchild), timeout_s=5)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_adopt_after_dropping_the_runtime(engine_settings: Settings, fake_engine: Path) -> None:
    first = ProcessRuntime(settings=engine_settings)
    spec = spec_for(engine_settings, fake_engine, "run")
    spec = LaunchSpec(**{**spec.__dict__, "api_key": "engine-key-1", "api_key_env": "LLAMA_API_KEY"})
    handle = first.start(spec)
    assert handle.api_key == "engine-key-1"
    pid_dir = engine_settings.run_dir / "engines"
    assert pid_dir.stat().st_mode & 0o777 == 0o700  # the pid files hold engine keys: owner only
    assert (pid_dir / "llamacpp-model-1.json").stat().st_mode & 0o777 == 0o600
    del first
    gc.collect()

    second = ProcessRuntime(settings=engine_settings)
    adopted = second.adopt()
    assert [(e.name, e.pid, e.port, e.labels["cortex.model-id"], e.api_key) for e in adopted] == [
        ("llamacpp-model-1", handle.pid, 18001, "1", "engine-key-1")  # the key survives the daemon
    ]
    assert second.status(adopted[0]).alive
    assert wait_until(lambda: "engine starting" in second.logs(adopted[0]), timeout_s=10)
    second.stop(adopted[0], timeout_s=5)
    assert wait_until(lambda: _zombie(handle.pid), timeout_s=5)
    assert ProcessRuntime(settings=engine_settings).adopt() == []


def test_adopt_ignores_dead_and_reused_pids(engine_settings: Settings) -> None:
    pid_dir = engine_settings.run_dir / "engines"
    pid_dir.mkdir(parents=True)
    # pid 1 exists but was not started by us at that time: a reused pid
    reused = {
        "name": "llamacpp-model-8",
        "pid": 1,
        "port": 1,
        "labels": {},
        "started": 12345.0,
        "log_file": "x",
    }
    (pid_dir / "llamacpp-model-8.json").write_text(json.dumps(reused))
    dead = {**reused, "name": "llamacpp-model-9", "pid": 2**22 + 12345}
    (pid_dir / "llamacpp-model-9.json").write_text(json.dumps(dead))
    (pid_dir / "garbage.json").write_text("{not json")
    rt = ProcessRuntime(settings=engine_settings)
    assert rt.adopt() == []
    assert not (pid_dir / "llamacpp-model-9.json").exists()
    handle = RunningEngine(runtime="process", name="llamacpp-model-8", port=1, pid=1)
    assert not rt.status(handle).alive
    rt.stop(handle, timeout_s=0.1)  # must not signal pid 1's group
    assert psutil.pid_exists(1)


def test_missing_binary_is_a_clear_error(engine_settings: Settings, fake_engine: Path) -> None:
    spec = spec_for(engine_settings, fake_engine, "run")
    spec = LaunchSpec(**{**spec.__dict__, "argv": ["llama-server-does-not-exist", "-m", "x"]})
    with pytest.raises(EngineError, match="not found") as exc:
        ProcessRuntime(settings=engine_settings).start(spec)
    assert exc.value.fix and "./install.sh" in exc.value.fix


def test_refuses_a_second_copy(engine_settings: Settings, fake_engine: Path) -> None:
    rt = ProcessRuntime(settings=engine_settings)
    handle = rt.start(spec_for(engine_settings, fake_engine, "run"))
    try:
        with pytest.raises(EngineError, match="already running"):
            ProcessRuntime(settings=engine_settings).start(spec_for(engine_settings, fake_engine, "run"))
    finally:
        rt.stop(handle, timeout_s=5)
