"""bench/gateway_bench.py still runs end to end: the floor, one real daemon, every figure filled in.

The README's performance table comes from this script; a refactor of the daemon (how workers
start, how recipes register, what the journal setting is called) must not leave it broken until
the next time someone regenerates the table. Short durations: this checks the harness, not speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_the_gateway_bench_measures_the_floor_and_a_daemon() -> None:
    before = set(Path(tempfile.gettempdir()).glob("cortex-bench-*"))
    proc = subprocess.run(
        [sys.executable, "bench/gateway_bench.py", "--skip-llama", "--concurrency", "2", "--duration", "0.3"]
        + ["--streams", "30", "--workers", "1", "--journal-fsync", "always"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["journal_fsync"] == "always"
    for name, run in (("floor", result["floor"]), ("1 worker", result["workers"]["1"])):
        (row,) = run["non_streaming"]
        for side in ("direct", "gateway"):
            assert row[side]["n"] > 0 and row[side]["errors"] == 0, (name, side, row[side])
            assert row[side]["cpu_us_per_req"] > 0, (name, side, row[side])
        # CPU time has a 10 ms tick: a few short streams may read 0, never less or missing
        assert run["ttft"]["gateway"]["p50_ms"] > 0 and run["ttft"]["gateway"]["cpu_us_per_stream"] >= 0, (
            name,
            run["ttft"],
        )
        assert run["rss_idle_mib"] and run["rss_after_mib"], name
    # a finished run leaves nothing behind (its homes, databases, logs)
    assert set(Path(tempfile.gettempdir()).glob("cortex-bench-*")) == before
