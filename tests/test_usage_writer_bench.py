"""bench/usage_writer_bench.py still runs and compares what it says it compares: the README and
closing notes quote it. Few rows: this checks the harness, not speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_usage_writer_bench_measures_both_paths() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/usage_writer_bench.py", "--rows", "600", "--rounds", "1", "--batch", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["dialect"] == "sqlite" and result["rows"] == 600
    for path in ("bulk", "returning"):
        assert result["median_cpu_us_per_row"][path] > 0, result
