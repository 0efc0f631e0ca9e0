"""Where the engine executables are, for the process runtime.

llama-server: `settings.llama_server_bin`, else the one `install.sh` built
(`${XDG_CACHE_HOME:-~/.cache}/cortex/llama-server/<version>/bin/llama-server`),
else `llama-server` on PATH. vllm: `settings.vllm_bin`, else `vllm` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings

LLAMA_CPP_VERSION = "0.3.36"  # llama-cpp-python release whose vendored llama.cpp we build


def default_cache_root(environ: Mapping[str, str] | None = None) -> Path:
    # A default like Settings.home's: the entrypoints may pass their own environ.
    env = os.environ if environ is None else environ
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "cortex"


def built_llama_server(environ: Mapping[str, str] | None = None) -> Path:
    return default_cache_root(environ) / "llama-server" / LLAMA_CPP_VERSION / "bin" / "llama-server"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_llama_server(settings: Settings, *, environ: Mapping[str, str] | None = None) -> Path:
    if settings.llama_server_bin is not None:
        if _executable(settings.llama_server_bin):
            return settings.llama_server_bin
        raise EngineError(
            f"llama-server binary {settings.llama_server_bin} (setting llama_server_bin) "
            "is missing or not executable",
            fix="Fix llama_server_bin in cortex.yaml, or remove it and run ./install.sh to build it.",
        )
    built = built_llama_server(environ)
    if _executable(built):
        return built
    on_path = shutil.which("llama-server", path=(environ or os.environ).get("PATH"))
    if on_path:
        return Path(on_path)
    raise EngineError(
        f"llama-server was not found (looked at {built} and on PATH)",
        fix="Run ./install.sh to build it (or set llama_server_bin in cortex.yaml).",
    )


def find_vllm(settings: Settings, *, environ: Mapping[str, str] | None = None) -> Path:
    configured = settings.vllm_bin
    if configured is not None:
        if _executable(configured):
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
