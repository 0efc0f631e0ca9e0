"""CI's strict mode really refuses skips, also when the test cleared CORTEX_* from its environment
(tests/conftest.py's _isolated_environment does, for every test): it once read the switch at
report time and so let every skip through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFTEST = """
import pytest
from tests.support.strict_skips import StrictSkips

def pytest_configure(config):
    config.pluginmanager.register(StrictSkips(), "cortex-strict-skips")

@pytest.fixture(autouse=True)
def _cleared(monkeypatch):
    monkeypatch.delenv("CORTEX_TEST_STRICT", raising=False)
"""

TESTS = """
import pytest

@pytest.fixture
def missing_part():
    pytest.skip("no such part here")

def test_skips_in_its_body():
    pytest.skip("not built")

def test_skips_in_a_fixture(missing_part):
    pass
"""


def run(tmp_path: Path, strict: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_probe.py").write_text(TESTS)
    env = {**os.environ, "CORTEX_TEST_STRICT": strict, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    return subprocess.run(
        [*argv, str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


def test_strict_mode_fails_every_unlisted_skip(tmp_path: Path) -> None:
    strict = run(tmp_path, "1")
    assert strict.returncode == 1, strict.stdout
    assert "skips refused by strict mode: 2" in strict.stdout, strict.stdout  # in a body and in a fixture


def test_without_strict_mode_a_skip_is_a_skip(tmp_path: Path) -> None:
    relaxed = run(tmp_path, "0")
    assert relaxed.returncode == 0 and "2 skipped" in relaxed.stdout, relaxed.stdout
