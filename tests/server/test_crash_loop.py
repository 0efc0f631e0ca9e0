"""A live crash loop: the real llama-server, started by the daemon's supervisor, dies each time it
comes back; the supervisor restarts it with exponential backoff, then gives up with a diagnosis.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.served_daemon import ServedDaemon, create_tiny_model, daemon_up

pytestmark = [pytest.mark.slow, pytest.mark.llama]

RESTART = re.compile(r"restart (\d+) in (\d+)s")


def replica(daemon: ServedDaemon) -> dict[str, Any]:
    shown = daemon.admin("GET", "/admin/models/tiny")
    return {"model": shown, **shown["replicas"][0]}


def test_a_crash_loop_backs_off_then_fails_with_a_diagnosis(
    tmp_path: Path, llama_server_bin: Path, tiny_gguf_file: Path
) -> None:
    with daemon_up(tmp_path / "home", llama_server_bin=llama_server_bin, tiny_gguf=tiny_gguf_file) as d:
        create_tiny_model(d, tmp_path)
        killed: list[int] = []
        delays: dict[int, int] = {}  # restart number -> announced delay (s), as `model show` says
        deadline = time.monotonic() + 240  # a generous ceiling; the backoff alone is 1+2+4+8+16 s
        while time.monotonic() < deadline:
            now = replica(d)
            if now["model"]["state"] == "failed":
                break
            if match := RESTART.search(now.get("state_reason") or ""):
                delays[int(match[1])] = int(match[2])
            pid = now.get("pid")
            if pid and pid not in killed and now["state"] == "running":
                os.kill(pid, signal.SIGKILL)  # the engine this daemon started, by its pid
                killed.append(pid)
            time.sleep(0.1)
        final = replica(d)
        assert final["model"]["state"] == "failed", final
        diagnosis = final["model"]["diagnosis"]
        assert diagnosis["rule"] == "crash-loop" and diagnosis["fix"], diagnosis
        assert len(killed) == 6  # the first start and five restarts, each killed once
        assert final["restart_count"] == 6
        # each restart waited twice as long as the one before (seen while it waited)
        assert delays == {1: 1, 2: 2, 3: 4, 4: 8, 5: 16}, delays
        assert d.engine_pids() == []  # nothing left running for a failed model
