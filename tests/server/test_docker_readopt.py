"""Docker engines survive a daemon restart: `cortexctl down` leaves the container running, the
next `cortexctl up` re-adopts it (same container, same port, same engine key) and serves through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.engine_fixtures import wait_until
from tests.support.served_daemon import completion, create_tiny_model, daemon_up, wait_serving

pytestmark = [pytest.mark.slow, pytest.mark.llama, pytest.mark.docker]


def test_a_docker_engine_is_readopted_after_a_daemon_restart(
    tmp_path: Path, llama_server_bin: Path, tiny_gguf_file: Path, docker_client: Any, engine_image: str
) -> None:
    with daemon_up(
        tmp_path / "home",
        llama_server_bin=llama_server_bin,
        tiny_gguf=tiny_gguf_file,
        CORTEX_RUNTIME="docker",
    ) as d:
        create_tiny_model(d, tmp_path, runtime="docker")
        key = d.key("through-docker")
        wait_serving(d, key)
        before = d.admin("GET", "/admin/models/tiny")["replicas"][0]
        assert before["runtime"] == "docker" and before["container_id"]
        container = docker_client.containers.get(before["container_id"])
        assert container.labels.get("cortex.managed") == "true"

        d.cli.run("down", check=True)
        container.reload()
        assert container.status == "running"  # a daemon stop never stops engines

        d.cli.run("up", check=True)
        assert wait_until(
            lambda: d.admin("GET", "/admin/models/tiny")["state"] == "running", timeout_s=60, interval_s=0.5
        )
        after = d.admin("GET", "/admin/models/tiny")["replicas"][0]
        assert (after["container_id"], after["port"]) == (before["container_id"], before["port"])
        assert completion(d.url, key).status_code == 200  # adopted with its engine key: still served

        d.cli.run("model", "stop", "tiny", check=True)
        assert wait_until(lambda: _gone(docker_client, before["container_id"]), timeout_s=60)


def _gone(client: Any, container_id: str) -> bool:
    import docker

    try:
        return client.containers.get(container_id).status in ("exited", "dead")
    except docker.errors.NotFound:
        return True
