"""Where llama-server is, for the process runtime.

`settings.llama_server_bin`, else the one `install.sh` built
(`${XDG_CACHE_HOME:-~/.cache}/cortex/llama-server/<version>/bin/llama-server`),
else `llama-server` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.cache import default_cache_root, is_executable
from cortexctl.engines.llamacpp.pin import VERSION

MISSING_BINARY_FIX = "Run ./install.sh to build llama-server (or set llama_server_bin in cortex.yaml)."


def built_llama_server(environ: Mapping[str, str] | None = None) -> Path:
    return default_cache_root(environ) / "llama-server" / VERSION / "bin" / "llama-server"


def find_llama_server(settings: Settings, *, environ: Mapping[str, str] | None = None) -> Path:
    if settings.llama_server_bin is not None:
        if is_executable(settings.llama_server_bin):
            return settings.llama_server_bin
        raise EngineError(
            f"llama-server binary {settings.llama_server_bin} (setting llama_server_bin) "
            "is missing or not executable",
            fix="Fix llama_server_bin in cortex.yaml, or remove it and run ./install.sh to build it.",
        )
    built = built_llama_server(environ)
    if is_executable(built):
        return built
    on_path = shutil.which("llama-server", path=(environ or os.environ).get("PATH"))
    if on_path:
        return Path(on_path)
    raise EngineError(
        f"llama-server was not found (looked at {built} and on PATH)",
        fix="Run ./install.sh to build it (or set llama_server_bin in cortex.yaml).",
    )
