"""The `gguf` package's type tables (value types, quant block sizes, file types), without numpy.

Why: `import gguf` runs the package's `__init__`, which imports its reader and writer and so
numpy: ~14 MiB in every process that reads a GGUF header, the daemon's supervising worker
included, for four tables. `gguf/constants.py` imports only the standard library, so it is
loaded here on its own, as the package's own `gguf.constants` module: a later `import gguf`
(the CLI's tools, tests) finds it in `sys.modules` and reuses it, so there is one set of enums.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

MODULE = "gguf.constants"


def _constants() -> ModuleType:
    loaded = sys.modules.get(MODULE)
    if loaded is not None:  # gguf itself, or an earlier call, has loaded it
        return loaded
    package = importlib.util.find_spec("gguf")  # finds the package without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ImportError("the gguf package is not installed")
    spec = importlib.util.spec_from_file_location(
        MODULE, Path(package.submodule_search_locations[0]) / "constants.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError("gguf/constants.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[MODULE]
        raise
    return module


if TYPE_CHECKING:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType
else:
    _c = _constants()
    GGML_QUANT_SIZES = _c.GGML_QUANT_SIZES
    GGMLQuantizationType = _c.GGMLQuantizationType
    GGUFValueType = _c.GGUFValueType
    LlamaFileType = _c.LlamaFileType

__all__ = ["GGML_QUANT_SIZES", "GGMLQuantizationType", "GGUFValueType", "LlamaFileType"]
