"""Engine images through the Docker SDK: save for export, load for import."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.progress import Progress

log = logging.getLogger(__name__)

DockerFactory = Callable[[], Any]
"""Builds a connected `docker.DockerClient`; the CLI passes `docker.from_env`."""


def connect(factory: DockerFactory | None, *, why: str) -> Any:
    """A client that answers ping, or a BundleError that says how to get one."""
    if factory is None:
        raise BundleError(
            f"{why}, but no Docker Engine is configured", fix="Start Docker on this host and retry."
        )
    try:
        client = factory()
        client.ping()
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - the SDK raises many types for "not reachable"
        raise BundleError(
            f"{why}, but the Docker Engine is not reachable: {exc}",
            fix="Start Docker (e.g. `systemctl start docker`) or set DOCKER_HOST, then retry.",
        ) from None
    return client


def image_id(client: Any, name: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def save_image(client: Any, name: str, dest: Path, progress: Progress) -> None:
    """`docker save NAME` into `dest` (an archive that restores the tag on load)."""
    import docker.errors

    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        raise BundleError(
            f"image {name} is not present in the Docker Engine",
            fix=f"Build or pull {name} on this host (e.g. scripts/build-engine-image.sh), then export again.",
        ) from None
    with dest.open("wb") as fh:
        for chunk in image.save(chunk_size=1 << 20, named=True):
            fh.write(chunk)
            progress.advance(len(chunk))


def load_image(client: Any, name: str, archive: Path) -> None:
    """`docker load` from a verified archive, then check it really provides `name`."""
    with archive.open("rb") as fh:
        loaded = client.images.load(fh)  # streams the file to the engine
    log.info("loaded %s from %s: %s", name, archive.name, [getattr(i, "tags", None) for i in loaded])
    if image_id(client, name) is None:
        raise BundleError(
            f"image archive {archive.name} did not provide {name}",
            fix="The bundle's image item is mislabelled; re-export the bundle.",
        )
