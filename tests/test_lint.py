"""The tree stays lint-clean (ruff: E, F, I, B, UP) — a broken import or unused name fails CI."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_check_passes() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.fail("ruff is missing from the venv: run ./install.sh --dev")
    cmd = [ruff, "check", "--no-cache", str(REPO)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:]
