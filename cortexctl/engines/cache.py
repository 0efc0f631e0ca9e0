"""Where CORTEX keeps engine binaries it built or imported, and the executable test.

`${XDG_CACHE_HOME:-~/.cache}/cortex/<tool>/<version>/bin/<tool>` (see bundles/FORMAT.md,
`engine-binary`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def default_cache_root(environ: Mapping[str, str] | None = None) -> Path:
    # A default like Settings.home's: the entrypoints may pass their own environ.
    env = os.environ if environ is None else environ
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "cortex"


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
