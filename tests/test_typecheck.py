"""`mypy --strict` over the tree is clean (settings and paths: pyproject.toml [tool.mypy]).

scripts/check runs mypy too; this test makes the suite (what CI runs) refuse a type error as well.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it is in the dev extra: pip install -e '.[dev]')",
)
def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    # Our own cache dir: a cold run takes ~25 s and never reads another run's state.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"mypy found type errors:\n{done.stdout}{done.stderr}"
    assert "Success: no issues found" in done.stdout
