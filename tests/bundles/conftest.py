"""Fixtures for bundle tests: a CORTEX home, bundle definitions, a real Docker Engine, a tiny image."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles.export import ExportResult, export_bundle
from cortexctl.core.settings import Settings, load_settings
from tests.bundles.helpers import write_definition, write_sources


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


@pytest.fixture
def engine_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "cortex"


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """Source files on the 'connected host': a model, a recipe, two wheels, an engine binary."""
    return write_sources(tmp_path / "src")


@pytest.fixture
def make_bundle(sources: Path, engine_cache: Path, tmp_path: Path) -> Callable[..., ExportResult]:
    def make(
        *, compression: str = "zstd", sign_key: Path | None = None, docker_factory: Any = None, **spec: Any
    ) -> ExportResult:
        definition = write_definition(sources, **spec)
        out = (
            tmp_path
            / "out"
            / f"b-{compression}-{time.monotonic_ns()}.tar{'.zst' if compression == 'zstd' else ''}"
        )
        return export_bundle(
            definition,
            output=out,
            engine_cache_dir=engine_cache,
            compression=compression,
            sign_key=sign_key,
            docker_factory=docker_factory,
        )

    return make


# ---- a real Docker Engine ---------------------------------------------------------------


def _ping(host: str | None) -> Any:
    import docker

    try:
        client = docker.DockerClient(base_url=host) if host else docker.from_env()
        client.ping()
        return client
    except Exception:  # noqa: BLE001 - any failure means "not this one"
        return None


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """The default engine if it answers, else a private `dockerd --bridge=none` started here.

    Yields the DOCKER_HOST URL (None: the default). Skips only if dockerd cannot run.
    """
    if _ping(None) is not None:
        yield None
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        pytest.skip("no Docker Engine answers and dockerd cannot be started here (not installed or not root)")
    root = Path("/tmp") / f"cortex-bundle-dockerd-{os.getpid()}"  # short: unix socket paths are limited
    root.mkdir(parents=True, exist_ok=True)
    host = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [
            dockerd,
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            f"--data-root={root}/data",
            f"--exec-root={root}/exec",
            f"--pidfile={root}/dockerd.pid",
            f"--host={host}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(60):
            if _ping(host) is not None:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        else:
            pass
        if _ping(host) is None:
            tail = (root / "dockerd.log").read_text(errors="replace")[-800:]
            pytest.skip(f"dockerd could not start here: {tail}")
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_factory(docker_host: str | None) -> Callable[[], Any]:
    import docker

    def factory() -> Any:
        return docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()

    return factory


@pytest.fixture
def tiny_image(docker_factory: Callable[[], Any]) -> str:
    """A real image built locally: `docker import` of a one-file rootfs, then a one-line Dockerfile.

    Built again whenever a test removed it (cheap: one file, one label).
    """
    import docker.errors

    client = docker_factory()
    base, tag = "cortex-test/bundle-base:1", "cortex-test/bundle-engine:1"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w") as tar:
        data = b"cortex bundle test rootfs\n"
        info = tarfile.TarInfo("etc/cortex-test")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repo, _, version = base.partition(":")
    client.api.import_image_from_data(rootfs.getvalue(), repository=repo, tag=version)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f"FROM {base}\nLABEL org.cortex.test=bundle\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    client.images.remove(base)
    return tag
