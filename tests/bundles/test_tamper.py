"""Hostile and damaged bundles: each is refused with the reason, naming the entry, and nothing changes."""

from __future__ import annotations

import copy
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.install import import_bundle, list_imports, verify_bundle
from cortexctl.bundles.recipes_adapter import register_recipes
from cortexctl.core.settings import Settings
from tests.bundles.helpers import (
    RECIPE,
    Entry,
    image_ids,
    manifest_of,
    read_entries,
    snapshot,
    special,
    with_manifest,
    write_entries,
)

Tamper = Callable[[list[Entry]], list[Entry]]


def _flip(entries: list[Entry], index: int) -> list[Entry]:
    out = list(entries)
    member, data = out[index]
    assert data
    pos = len(data) // 2
    out[index] = (member, data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :])
    return out


def _edit_item(entries: list[Entry], kind: str, **changes: Any) -> list[Entry]:
    manifest = copy.deepcopy(manifest_of(entries))
    item = next(i for i in manifest["items"] if i["kind"] == kind)
    item.update(changes)
    return with_manifest(entries, manifest)


def _replace_item(entries: list[Entry], kind: str, new: Entry) -> list[Entry]:
    path = next(i["path"] for i in manifest_of(entries)["items"] if i["kind"] == kind)
    return [new if m.name == path else (m, d) for m, d in entries]


def _model_index(entries: list[Entry]) -> int:
    return next(n for n, (m, _) in enumerate(entries) if m.name.startswith("models/"))


CASES: dict[str, tuple[Tamper, str]] = {
    "flipped byte in the model": (lambda e: _flip(e, _model_index(e)), "model 'model.gguf'.*sha256 mismatch"),
    "flipped byte in the recipe": (lambda e: _flip(e, 1), "recipe 'demo.yaml'.*sha256 mismatch"),
    "flipped byte in the engine": (
        lambda e: _flip(e, len(e) - 1),
        "engine-binary 'llama-server/0.3.36'.*sha256",
    ),
    "manifest size disagrees": (
        lambda e: _edit_item(e, "model", size=manifest_of(e)["items"][1]["size"] + 1),
        "model 'model.gguf'.*size mismatch",
    ),
    "tar-slip path in the manifest": (
        lambda e: _edit_item(e, "model", path="../../evil.gguf"),
        "evil.gguf.*'\\.\\.'",
    ),
    "absolute path in the manifest": (
        lambda e: _edit_item(e, "model", path="/etc/evil.gguf"),
        "absolute path",
    ),
    "tar-slip entry appended": (
        lambda e: e + [(tarfile.TarInfo("../evil.sh"), b"#!/bin/sh\n")],
        "entry '../evil.sh'.*not a plain relative path",
    ),
    "absolute entry appended": (
        lambda e: e + [(tarfile.TarInfo("/etc/cron.d/evil"), b"x")],
        "entry '/etc/cron.d/evil'.*absolute path",
    ),
    "unlisted entry": (lambda e: e + [(tarfile.TarInfo("models/extra.gguf"), b"x")], "unlisted entry"),
    "duplicate entry": (lambda e: e + [e[_model_index(e)]], "entry 'models/model.gguf'.*duplicate entry"),
    "symlink escaping the bundle": (
        lambda e: _replace_item(e, "model", special("models/model.gguf", tarfile.SYMTYPE, "/etc/passwd")),
        "model 'model.gguf'.*symbolic link",
    ),
    "symlink inside the bundle": (
        lambda e: _replace_item(
            e, "model", special("models/model.gguf", tarfile.SYMTYPE, "recipes/demo.yaml")
        ),
        "model 'model.gguf'.*symbolic link",
    ),
    "hard link": (
        lambda e: _replace_item(
            e, "model", special("models/model.gguf", tarfile.LNKTYPE, "recipes/demo.yaml")
        ),
        "model 'model.gguf'.*hard link",
    ),
    "device file": (
        lambda e: _replace_item(e, "model", special("models/model.gguf", tarfile.CHRTYPE)),
        "model 'model.gguf'.*device file",
    ),
    "fifo": (lambda e: _replace_item(e, "model", special("models/model.gguf", tarfile.FIFOTYPE)), "FIFO"),
    "directory entry": (
        lambda e: _replace_item(e, "model", special("models/model.gguf", tarfile.DIRTYPE)),
        "directory",
    ),
    "unknown format version": (
        lambda e: with_manifest(e, {**manifest_of(e), "format_version": 3}),
        "unsupported bundle format version 3",
    ),
    "duplicate names in the manifest": (
        lambda e: with_manifest(
            e,
            {
                **manifest_of(e),
                "items": manifest_of(e)["items"] + [dict(manifest_of(e)["items"][1], path="x/y")],
            },
        ),
        "duplicate item name",
    ),
    "missing item": (lambda e: [x for x in e if not x[0].name.startswith("engines/")], "missing"),
    "manifest not first": (lambda e: e[1:] + e[:1], "must start with manifest.json"),
}


@pytest.fixture
def installed_state(settings: Settings, engine_cache: Path) -> Iterator[Callable[[], Any]]:
    """Something already installed (a model, a recipe) and a way to read the whole state."""
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "existing.gguf").write_bytes(b"already here")
    register_recipes(settings, [(RECIPE.format(name="existing", model="existing.gguf"), "by-hand")])

    def state() -> Any:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from cortex_server.db.engine import make_engine
        from cortex_server.db.models import Recipe

        engine = make_engine(settings.effective_database_url)
        with Session(engine) as s:
            rows = sorted(r.name for r in s.scalars(select(Recipe)))
        engine.dispose()
        return snapshot(settings.home), snapshot(engine_cache), rows, list_imports(settings)

    yield state


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_bundle_is_refused_and_nothing_changes(
    case: str, make_bundle: Any, settings: Settings, engine_cache: Path, installed_state: Any, tmp_path: Path
) -> None:
    tamper, reason = CASES[case]
    good = make_bundle(compression="none")
    bad = write_entries(tmp_path / "bad.tar", tamper(read_entries(good.path)))
    before = installed_state()

    with pytest.raises(BundleError, match=reason) as exc:
        import_bundle(bad, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert "nothing was installed" in exc.value.message
    with pytest.raises(BundleError, match=reason):
        verify_bundle(bad, settings=settings, allow_unsigned=True)

    assert installed_state() == before


@pytest.mark.parametrize("compression", ["zstd", "none"])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_bundle_is_refused(
    compression: str,
    keep: float,
    make_bundle: Any,
    settings: Settings,
    engine_cache: Path,
    installed_state: Any,
) -> None:
    good = make_bundle(compression=compression)
    data = good.path.read_bytes()
    good.path.write_bytes(data[: int(len(data) * keep)])
    before = installed_state()
    with pytest.raises(BundleError, match="truncated|missing|corrupt"):
        import_bundle(good.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert installed_state() == before


def test_flipped_byte_in_compressed_stream_is_refused(
    make_bundle: Any, settings: Settings, engine_cache: Path, installed_state: Any
) -> None:
    good = make_bundle(compression="zstd")
    data = bytearray(good.path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x40
    good.path.write_bytes(bytes(data))
    before = installed_state()
    with pytest.raises(BundleError, match="bundle refused"):
        import_bundle(good.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert installed_state() == before


def test_not_a_bundle(tmp_path: Path, settings: Settings, engine_cache: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    with pytest.raises(BundleError, match="bundle refused"):
        import_bundle(junk, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("target", ["image", "engine-binary"])
def test_tampered_image_bundle_leaves_docker_unchanged(
    target: str,
    make_bundle: Any,
    settings: Settings,
    engine_cache: Path,
    docker_factory: Any,
    tiny_image: str,
    tmp_path: Path,
) -> None:
    """A bad byte in the image itself, or in an item after it: no image is loaded either way."""
    client = docker_factory()
    good = make_bundle(compression="none", images=[tiny_image], docker_factory=docker_factory)
    client.images.remove(tiny_image)
    entries = read_entries(good.path)
    path = next(i["path"] for i in manifest_of(entries)["items"] if i["kind"] == target)
    bad = write_entries(
        tmp_path / "bad.tar", _flip(entries, next(n for n, (m, _) in enumerate(entries) if m.name == path))
    )
    before = image_ids(client)
    with pytest.raises(BundleError, match=f"{target} .*sha256 mismatch"):
        import_bundle(
            bad,
            settings=settings,
            engine_cache_dir=engine_cache,
            allow_unsigned=True,
            docker_factory=docker_factory,
        )
    assert image_ids(client) == before
    assert list_imports(settings) == []
