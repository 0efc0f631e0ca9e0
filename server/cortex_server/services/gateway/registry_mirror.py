"""The routing registry shared by the gateway worker processes of `cortexctl serve --workers N`.

One worker supervises the engines and owns the registry; it writes a snapshot here after
every change (`publish`). The other workers poll the file's identity and load it into their
own registry (`follow`), so all of them route to the same replicas with the same engine keys.
The file lives in the daemon's private run directory (0600, like the secret key: it holds the
per-launch engine keys) and is replaced atomically, so a reader never sees half of it.
Routing bookkeeping (outstanding requests, circuit breakers) stays per worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel

log = logging.getLogger(__name__)

POLL_S = 0.2  # how stale a follower's view may be
_REPLICA_FIELDS = ("model_id", "model_name", "replica_index", "base_url", "healthy", "api_key")


def snapshot(registry: ModelRegistry) -> bytes:
    models = []
    for model in registry.all():
        entry: dict[str, Any] = {k: v for k, v in asdict(model).items() if k != "replicas"}
        entry["replicas"] = [{f: getattr(r, f) for f in _REPLICA_FIELDS} for r in model.replicas]
        models.append(entry)
    return orjson.dumps(models)


def write_snapshot(path: Path, registry: ModelRegistry) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(snapshot(registry))
    os.replace(tmp, path)


def load_snapshot(data: bytes, registry: ModelRegistry) -> None:
    """Make `registry` hold exactly the snapshot's models (replicas kept where unchanged)."""
    models = []
    for entry in orjson.loads(data):
        replicas = [ReplicaEndpoint(**r) for r in entry.pop("replicas")]
        models.append(ServedModel(**entry, replicas=replicas))
    names = {m.served_name for m in models}
    for stale in [m.served_name for m in registry.all() if m.served_name not in names]:
        registry.remove(stale)
    for model in models:
        registry.put(model)
    registry.loaded = True


async def publish(registry: ModelRegistry, path: Path, *, poll_s: float = POLL_S) -> None:
    """Runs in the supervising worker: write the snapshot whenever the registry changed."""
    written = -1
    while True:
        if registry.version != written:
            version = registry.version
            try:
                await asyncio.to_thread(write_snapshot, path, registry)
                written = version
            except OSError as exc:
                log.warning("could not share the routing registry at %s: %s", path, exc)
        await asyncio.sleep(poll_s)


async def follow(registry: ModelRegistry, path: Path, *, poll_s: float = POLL_S) -> None:
    """Runs in every other worker: load the snapshot whenever the file was replaced."""
    seen: tuple[int, int] | None = None
    while True:
        try:
            st = os.stat(path)
            identity = (st.st_ino, st.st_mtime_ns)
            if identity != seen:
                data = await asyncio.to_thread(path.read_bytes)
                load_snapshot(data, registry)
                seen = identity
        except FileNotFoundError:
            pass  # the supervising worker has not published yet
        except (OSError, ValueError, TypeError) as exc:
            log.warning("could not read the shared routing registry at %s: %s", path, exc)
        await asyncio.sleep(poll_s)
