"""Helpers shared by the bundle tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
spec:
  engine: llamacpp
  served_name: {name}
  model:
    path: {model}
  args:
    context_length: 512
"""


def write_definition(
    directory: Path, *, name: str = "test-bundle", images: list[str] | None = None, **spec: Any
) -> Path:
    body: dict[str, Any] = {
        "recipes": ["demo.yaml"],
        "models": [{"name": "model.gguf", "path": "model.gguf"}],
        "wheelhouse": {"dir": "wheels"},
        "engine_binaries": [{"name": "llama-server", "version": "0.3.36", "path": "llama-server"}],
    }
    body.update(spec)
    if images:
        body["images"] = images
    path = directory / f"{name}.yaml"
    doc = {"apiVersion": "cortex/v1", "kind": "BundleDefinition", "metadata": {"name": name}, "spec": body}
    path.write_text(yaml.safe_dump(doc))
    return path


VOLATILE = {"cortex.db", "cortex.db-wal", "cortex.db-shm", "bundles/.lock"}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden staging included) → content, for 'nothing changed' checks.

    The SQLite files and the lock file are left out: the DB is compared by its rows.
    """
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and rel not in VOLATILE:
            out[rel] = p.read_bytes()
    return out


def image_ids(client: Any) -> list[str]:
    return sorted(str(i.id) for i in client.images.list(all=True))
