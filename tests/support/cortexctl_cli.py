"""Run the real `cortexctl` as a subprocess against a private home and port (fixture `cortexctl`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Cortexctl:
    home: Path
    port: int
    extra_env: dict[str, str]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
        return {**env, "CORTEX_HOME": str(self.home), "CORTEX_PORT": str(self.port), **self.extra_env}

    def run(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "cortexctl", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"cortexctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json", check=True).stdout)


@pytest.fixture
def cortexctl(cortex_home: Path, port: int) -> Iterator[Cortexctl]:
    cli = Cortexctl(home=cortex_home, port=port, extra_env={})
    yield cli
    cli.run("down")
