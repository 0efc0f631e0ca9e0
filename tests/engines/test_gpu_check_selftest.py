"""scripts/gpu-check.sh runs its whole flow here with VllmTestDouble (--self-test).

This tests the script (steps, launch specs, diagnosis checks, co-location, replica placement,
the report file), not vLLM: on a GPU host the same steps run against the pinned image.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_self_test_passes_and_writes_one_report(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    done = subprocess.run(  # noqa: S603 - our own script
        [str(REPO / "scripts" / "gpu-check.sh"), "--self-test", "--report", str(report), "--budget-s", "240"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    text = report.read_text()
    assert done.returncode == 0, text + done.stderr
    assert text.startswith("CORTEX gpu-check") and "SELF-TEST" in text
    for line in (
        "[PASS] models/chat: one chat completion",
        "[PASS] models/embed: one embedding",
        "[PASS] failures/gpu shared: exited, diagnosis gpu-memory-in-use",
        "[PASS] replicas: states ['ready', 'ready'], GPUs [(0,), (1,)]",
        "[SKIP] flags: self-test: needs the vLLM image",
    ):
        assert line in text
    assert "co-location check: OK shared, fits: GPU 0: awq 0.25 + chat 0.30" in text
    assert "summary: 0 FAIL" in text
