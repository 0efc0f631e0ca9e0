"""Crash history that lasts: an engine killed under a running model leaves its restart count,
exit signal and diagnosis in the DB; `model show` and `model logs --diagnose` show them, a
daemon restart keeps them, and the next start by hand clears them."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.engine_fixtures import llama_server_bin, tiny_gguf_file, wait_until  # noqa: F401
from tests.support.served_daemon import ServedDaemon, create_tiny_model, daemon_up

pytestmark = [pytest.mark.slow, pytest.mark.llama]


def shown(d: ServedDaemon) -> dict[str, Any]:
    return dict(d.admin("GET", "/admin/models/tiny"))


def running_pid(d: ServedDaemon) -> int | None:
    now = shown(d)
    replica = now["replicas"][0] if now["replicas"] else {}
    return replica.get("pid") if now["state"] == "running" else None


def test_a_killed_engine_is_remembered_across_a_daemon_restart_until_started_by_hand(
    tmp_path: Path,
    llama_server_bin: Path,  # noqa: F811 - fixture
    tiny_gguf_file: Path,  # noqa: F811 - fixture
) -> None:
    with daemon_up(tmp_path / "home", llama_server_bin=llama_server_bin, tiny_gguf=tiny_gguf_file) as d:
        create_tiny_model(d, tmp_path)
        pid = running_pid(d)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the engine this daemon started, by its pid
        assert wait_until(lambda: running_pid(d) not in (None, pid), timeout_s=90, interval_s=0.5)

        crashes = shown(d)["crashes"]
        assert crashes["restart_count"] == 1 and crashes["last_exit_signal"] == signal.SIGKILL
        assert crashes["last_crash"]["signal"] == "SIGKILL" and crashes["last_crash"]["log_lines"]

        d.cli.run("down", check=True)
        d.cli.run("up", check=True)
        assert shown(d)["crashes"]["restart_count"] == 1  # kept in the DB, not in the daemon

        text = d.cli.run("model", "show", "tiny", check=True).stdout
        assert "crashes" in text and "1 since the last start by hand" in text and "SIGKILL" in text
        diag = d.cli.run("model", "logs", "tiny", "--diagnose", check=True).stdout
        assert "last crash" in diag and "SIGKILL" in diag

        d.cli.run("model", "start", "tiny", check=True)  # a start by hand closes the history
        assert wait_until(lambda: shown(d)["crashes"] is None, timeout_s=30, interval_s=0.5)
