"""Where the `vllm` executable is, for the process runtime: `settings.vllm_bin`, else PATH."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.cache import is_executable

MISSING_BINARY_FIX = "Install vLLM on this GPU host, set vllm_bin in cortex.yaml, or use the docker runtime."


def find_vllm(settings: Settings, *, environ: Mapping[str, str] | None = None) -> Path:
    configured = settings.vllm_bin
    if configured is not None:
        if is_executable(configured):
            return configured
        raise EngineError(
            f"vllm executable {configured} (setting vllm_bin) is missing or not executable",
            fix="Fix vllm_bin in cortex.yaml, or use the docker runtime with the vLLM engine image.",
        )
    on_path = shutil.which("vllm", path=(environ or os.environ).get("PATH"))
    if on_path:
        return Path(on_path)
    raise EngineError(
        "the vllm executable was not found on PATH",
        fix="Run ./install.sh on a GPU host, set vllm_bin in cortex.yaml, or use the docker runtime with the "
        "vLLM engine image (`cortexctl bundle import FILE`).",
    )
