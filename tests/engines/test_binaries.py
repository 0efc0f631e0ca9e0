from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.llamacpp.binary import built_llama_server, find_llama_server
from cortexctl.engines.llamacpp.pin import VERSION as LLAMA_CPP_VERSION
from cortexctl.engines.vllm.binary import find_vllm


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_llama_server_lookup_order(engine_settings: Settings, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path_dir = tmp_path / "bin"
    env = {"XDG_CACHE_HOME": str(cache), "PATH": str(path_dir)}
    with pytest.raises(EngineError, match="llama-server was not found") as exc:
        find_llama_server(engine_settings, environ=env)
    assert exc.value.fix and "./install.sh" in exc.value.fix

    on_path = executable(path_dir / "llama-server")
    assert find_llama_server(engine_settings, environ=env) == on_path

    built = executable(cache / "cortex" / "llama-server" / LLAMA_CPP_VERSION / "bin" / "llama-server")
    assert built == built_llama_server(env)
    assert find_llama_server(engine_settings, environ=env) == built

    configured = executable(tmp_path / "custom" / "llama-server")
    settings = engine_settings.model_copy(update={"llama_server_bin": configured})
    assert find_llama_server(settings, environ=env) == configured

    broken = engine_settings.model_copy(update={"llama_server_bin": tmp_path / "nope"})
    with pytest.raises(EngineError, match="llama_server_bin"):
        find_llama_server(broken, environ=env)


def test_vllm_lookup(engine_settings: Settings, tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "bin")}
    with pytest.raises(EngineError, match="vllm executable was not found") as exc:
        find_vllm(engine_settings, environ=env)
    assert exc.value.fix and "docker runtime" in exc.value.fix
    on_path = executable(tmp_path / "bin" / "vllm")
    assert find_vllm(engine_settings, environ=env) == on_path
    configured = executable(tmp_path / "venv" / "bin" / "vllm")
    assert find_vllm(engine_settings.model_copy(update={"vllm_bin": configured}), environ=env) == configured
