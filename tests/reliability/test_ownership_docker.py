"""Two installations (two homes, two databases) on one real dockerd: each starts, restarts and
re-adopts its own engines, and never touches the other's.

Before installation ids, both named their first container `llamacpp-model-1` and each daemon's
start stopped every cortex-labelled container its own database did not know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.engine_fixtures import (  # noqa: F401 - fixtures
    docker_client,
    engine_image,
    llama_server_bin,
    tiny_gguf_file,
    wait_until,
)
from tests.support.served_daemon import ServedDaemon, completion, create_tiny_model, daemon_up, wait_serving

pytestmark = [pytest.mark.slow, pytest.mark.llama, pytest.mark.docker]


def _container(daemon: ServedDaemon, client: Any) -> Any:
    replica = daemon.admin("GET", "/admin/models/tiny")["replicas"][0]
    return client.containers.get(replica["container_id"])


def _state(daemon: ServedDaemon) -> str:
    return str(daemon.admin("GET", "/admin/models/tiny")["state"])


def test_two_installations_on_one_dockerd_never_touch_each_others_engines(
    tmp_path: Path,
    llama_server_bin: Path,  # noqa: F811 - fixture
    tiny_gguf_file: Path,  # noqa: F811 - fixture
    docker_client: Any,  # noqa: F811 - fixture
    engine_image: str,  # noqa: F811 - fixture
) -> None:
    boot = {"llama_server_bin": llama_server_bin, "tiny_gguf": tiny_gguf_file, "CORTEX_RUNTIME": "docker"}
    with daemon_up(tmp_path / "a", **boot) as a:
        create_tiny_model(a, tmp_path / "a", runtime="docker")
        key_a = a.key("a")
        wait_serving(a, key_a)
        ours_a = _container(a, docker_client)

        with daemon_up(tmp_path / "b", **boot) as b:  # its own DB: its model has id 1 as well
            create_tiny_model(b, tmp_path / "b", runtime="docker")
            key_b = b.key("b")
            wait_serving(b, key_b)
            ours_b = _container(b, docker_client)
            assert ours_a.name != ours_b.name  # the installation id is part of the name
            inst_a, inst_b = (c.labels["cortex.installation"] for c in (ours_a, ours_b))
            assert inst_a != inst_b and ours_a.name.endswith(inst_a) and ours_b.name.endswith(inst_b)

            # B restarts while A's engine runs: B re-adopts its own, leaves A's alone.
            b.cli.run("down", check=True)
            b.cli.run("up", check=True)
            assert wait_until(
                lambda: b.admin("GET", "/admin/models/tiny")["state"] == "running", timeout_s=90
            )
            assert _container(b, docker_client).id == ours_b.id
            ours_a.reload()
            assert ours_a.status == "running"

            # And A restarts while B's engine runs.
            a.cli.run("down", check=True)
            a.cli.run("up", check=True)
            assert wait_until(
                lambda: a.admin("GET", "/admin/models/tiny")["state"] == "running", timeout_s=90
            )
            assert _container(a, docker_client).id == ours_a.id
            ours_b.reload()
            assert ours_b.status == "running"
            assert completion(a.url, key_a).status_code == 200
            assert completion(b.url, key_b).status_code == 200
