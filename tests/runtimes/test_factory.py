from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cortexctl.core.errors import ConfigError
from cortexctl.core.settings import Settings
from cortexctl.runtimes import base as runtimes_base
from cortexctl.runtimes.base import choose_runtime, make_runtime
from cortexctl.runtimes.docker import DockerRuntime
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import make_recipe


def test_make_runtime(engine_settings: Settings) -> None:
    assert isinstance(make_runtime("process", engine_settings), ProcessRuntime)
    assert isinstance(make_runtime("docker", engine_settings), DockerRuntime)  # no I/O until used
    with pytest.raises(ConfigError, match="unknown runtime 'kubernetes'"):
        make_runtime("kubernetes", engine_settings)


def test_explicit_choices(engine_settings: Settings) -> None:
    recipe = make_recipe("llamacpp", "m.gguf", runtime="docker")
    assert choose_runtime(engine_settings.model_copy(update={"runtime": "process"}), recipe).name == "docker"
    plain = make_recipe("llamacpp", "m.gguf")
    assert choose_runtime(engine_settings.model_copy(update={"runtime": "process"}), plain).name == "process"


def test_auto_without_docker_is_process(engine_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert choose_runtime(engine_settings, make_recipe("llamacpp", "m.gguf")).name == "process"


@pytest.mark.docker
def test_auto_picks_docker_only_with_the_image(engine_settings: Settings, docker_client: Any) -> None:
    absent = make_recipe("llamacpp", "m.gguf", image="cortex/not-imported:0")
    assert choose_runtime(engine_settings, absent).name == "process"


@pytest.mark.docker
def test_auto_with_the_image_is_docker(engine_settings: Settings, engine_image: str) -> None:
    recipe = make_recipe("llamacpp", "m.gguf", image=engine_image)
    assert choose_runtime(engine_settings, recipe).name == "docker"


def test_auto_with_no_docker_socket_is_process(
    engine_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No DOCKER_HOST and no socket at the default path: nothing can answer, so auto is process
    without asking the docker SDK (docker_endpoint_present)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(runtimes_base, "DEFAULT_DOCKER_SOCKET", str(tmp_path / "docker.sock"))
    assert not runtimes_base.docker_endpoint_present()
    assert choose_runtime(engine_settings, make_recipe("llamacpp", "m.gguf")).name == "process"
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert runtimes_base.docker_endpoint_present()  # configured: the SDK is asked (and says no)
