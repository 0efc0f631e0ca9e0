"""`cortexctl --help` and other light commands must not import the heavy parts.

Over SSH and in scripts every invocation pays its imports before it starts. The
command modules import only Typer and rich at the top; this test runs the real
entry point in a fresh interpreter and lists which heavy modules it loaded. It
asserts on imports, not on time (timings on a shared CI machine are noise).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Top-level packages (or cortexctl sub-packages) that a command must load only when it needs them.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "cortex_server",
    "httpx",
    "pydantic_settings",  # (pydantic itself: Typer ≥ 0.29 coerces some parameter types with it)
    "psutil",
    "docker",
    "yaml",
    "gguf",
    "numpy",
    "cryptography",
    "zstandard",
    "redis",
    "fastapi",
    "uvicorn",
    "cortexctl.bundles",
    "cortexctl.validation",
    "cortexctl.recipes",
    "cortexctl.engines",
    "cortexctl.core.settings",
)


def loaded_heavy_modules(*args: str) -> tuple[int, list[str]]:
    code = (
        "import json, runpy, sys\n"
        "args = json.loads(sys.argv[1]); heavy = json.loads(sys.argv[2])\n"
        "sys.argv = ['cortexctl', *args]\n"
        "try:\n"
        "    runpy.run_module('cortexctl', run_name='__main__')\n"
        "    rc = 0\n"
        "except SystemExit as exc:\n"
        "    rc = exc.code or 0\n"
        "found = sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))\n"
        "sys.__stderr__.write('\\nHEAVY=' + json.dumps([rc, found]) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args)), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("HEAVY="))
    rc, found = json.loads(line.removeprefix("HEAVY="))
    return rc, found


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["model", "--help"], ["recipe", "validate", "--help"], ["bundle", "--help"]],
    ids=lambda a: " ".join(a),
)
def test_light_commands_import_nothing_heavy(args: list[str]) -> None:
    rc, found = loaded_heavy_modules(*args)
    assert rc == 0
    assert found == [], f"`cortexctl {' '.join(args)}` imported {found}"


def test_the_probe_sees_heavy_imports() -> None:
    """The same probe on a command that needs the settings does list pydantic: it can see."""
    rc, found = loaded_heavy_modules("status", "--json")
    assert rc == 0
    assert "pydantic_settings" in found and "cortexctl.core.settings" in found
