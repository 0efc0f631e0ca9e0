"""Bounded disk use: logs written by other processes (cortexd.out, engine logs) are rotated by
size with copy-truncate, keeping at most `log_backups` copies; the daemon runs it by itself."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cortex_server.core.logging import configure_logging
from cortexctl.core.logrotate import backup_path, rotate_if_over, rotate_logs
from cortexctl.core.settings import Settings

CAP = 64 * 1024

# An engine's view of its log: an O_APPEND file it keeps open, written line by line.
WRITER = """
import sys, time
with open(sys.argv[1], "ab", buffering=0) as out:
    for i in range(int(sys.argv[2])):
        out.write(b"line %08d " % i + b"x" * 200 + b"\\n")
        if i % 200 == 0:
            time.sleep(0.01)
"""


def test_a_file_beyond_the_cap_rotates_and_keeps_at_most_n_copies(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    lines = 6000  # ~1.3 MB: twenty times the cap
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(lines)])
    rotations = 0
    while writer.poll() is None:
        rotations += rotate_if_over(log, max_bytes=CAP, backups=3)
        time.sleep(0.01)
    rotations += rotate_if_over(log, max_bytes=CAP, backups=3)
    assert writer.returncode == 0 and rotations >= 5
    copies = sorted(tmp_path.glob("engine.log.*"))
    assert [p.name for p in copies] == ["engine.log.1", "engine.log.2", "engine.log.3"]
    assert all(p.stat().st_size <= CAP for p in copies)
    assert all(p.stat().st_mode & 0o077 == 0 for p in copies)  # private, as the logs are
    # The writer kept appending to the truncated file at its new end: no hole of NULs.
    live = log.read_bytes()
    assert len(live) <= CAP and b"\x00" not in live
    newest = (live or backup_path(log, 1).read_bytes()).splitlines()[-1]
    assert newest.startswith(b"line %08d" % (lines - 1))


def test_under_the_cap_nothing_moves(tmp_path: Path) -> None:
    log = tmp_path / "small.log"
    log.write_bytes(b"a" * CAP)
    assert not rotate_if_over(log, max_bytes=CAP, backups=2)
    assert not rotate_if_over(tmp_path / "absent.log", max_bytes=CAP, backups=2)
    assert list(tmp_path.iterdir()) == [log]


def test_the_daemon_output_and_every_engine_log_are_managed(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", log_max_bytes=CAP, log_backups=2)
    engines = settings.logs_dir / "engines"
    engines.mkdir(parents=True)
    for name in ("cortexd.out", "engines/llamacpp-model-1.log", "engines/vllm-model-2-1.log"):
        (settings.logs_dir / name).write_bytes(b"y" * (CAP + 1))
    (engines / "notes.txt").write_bytes(b"z" * (CAP * 2))  # not a log we manage
    for _ in range(4):
        rotated = rotate_logs(settings)
        for path in rotated:
            path.write_bytes(b"y" * (CAP + 1))
    assert len(rotated) == 3
    assert sorted(p.name for p in engines.iterdir()) == [
        "llamacpp-model-1.log", "llamacpp-model-1.log.1", "llamacpp-model-1.log.2",
        "notes.txt", "vllm-model-2-1.log", "vllm-model-2-1.log.1", "vllm-model-2-1.log.2",
    ]  # fmt: skip
    assert not backup_path(settings.logs_dir / "cortexd.out", 3).exists()


def test_cortexd_log_takes_the_same_caps(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        configure_logging(level="info", logs_dir=tmp_path, max_bytes=CAP, backups=2)
        for i in range(2000):
            logging.getLogger("cortex.test").info("message %d %s", i, "m" * 100)
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["cortexd.log", "cortexd.log.1", "cortexd.log.2"]
    assert all((tmp_path / f).stat().st_size <= CAP + 1024 for f in files)


def test_settings_refuse_caps_that_would_rotate_constantly() -> None:
    with pytest.raises(ValueError, match="log_max_bytes"):
        Settings(log_max_bytes=1000)


@pytest.mark.slow
def test_the_running_daemon_rotates_them(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
    from gateway_support import start_daemon

    home = tmp_path / "home"
    engine_log = home / "logs" / "engines" / "llamacpp-model-7.log"
    engine_log.parent.mkdir(parents=True)
    engine_log.write_bytes(b"e" * (CAP * 3))
    daemon = start_daemon(home, supervise=True, runtime="process", log_max_bytes=CAP, log_backups=2)
    try:
        deadline = time.monotonic() + 30
        while not backup_path(engine_log, 1).exists():
            assert time.monotonic() < deadline, "the daemon did not rotate the engine log"
            time.sleep(0.1)
    finally:
        daemon.stop()
    assert engine_log.stat().st_size == 0 and backup_path(engine_log, 1).stat().st_size == CAP


def test_docker_engines_log_through_a_capped_driver(
    tmp_path: Path,
    docker_client: Any,
    engine_image: str,  # built here when missing: a fresh machine has none yet
) -> None:
    """Container engines log through Docker's json-file driver with the same caps (real dockerd)."""
    import os

    from cortexctl.engines.base import LaunchSpec
    from cortexctl.runtimes.docker import container_kwargs

    client, image = docker_client, engine_image
    spec = LaunchSpec(
        name=f"cortex-logcap-test-{os.getpid()}", engine="llamacpp", argv=[], container_argv=["--version"],
        image=image, env={}, host="127.0.0.1", port=1, mounts=(), gpus="none", memory_limit_bytes=None,
        labels={}, log_file=tmp_path / "unused.log",
    )  # fmt: skip
    kwargs = container_kwargs(spec, log_max_bytes=CAP, log_backups=2)
    kwargs.pop("detach")
    container = client.containers.create(image, **kwargs)  # created, never started
    try:
        log_config = container.attrs["HostConfig"]["LogConfig"]
    finally:
        container.remove(force=True)
    assert log_config == {"Type": "json-file", "Config": {"max-size": str(CAP), "max-file": "3"}}
