"""Export → verify → import round trips, re-import, rollback and crash recovery."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cortexctl.bundles.container import head_boundary, read_head
from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.install import import_bundle, list_imports, verify_bundle
from cortexctl.bundles.ledger import Ledger
from cortexctl.bundles.recipes_adapter import register_recipes
from cortexctl.bundles.transaction import STAGING_PREFIX, recover
from cortexctl.core.settings import Settings
from tests.bundles.helpers import RECIPE, snapshot


def _recipe_rows(settings: Settings) -> list[tuple[str, str]]:
    from sqlalchemy.orm import Session

    from cortex_server.db.engine import make_engine
    from cortex_server.db.models import Recipe

    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as s:
            return [(r.name, r.source or "") for r in s.scalars(select(Recipe))]
    finally:
        engine.dispose()


def _audit_rows(settings: Settings) -> list[tuple[str, str, str | None]]:
    from sqlalchemy.orm import Session

    from cortex_server.db.engine import make_engine
    from cortex_server.db.models import AuditLog

    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as s:
            return [(r.actor, r.action, r.target) for r in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    finally:
        engine.dispose()


def _no_staging_left(*roots: Path) -> None:
    for root in roots:
        if root.exists():
            assert not [p for p in root.rglob(f"{STAGING_PREFIX}*")], f"staging left under {root}"


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_round_trip_installs_everything_where_it_belongs(
    compression: str, make_bundle: Any, settings: Settings, engine_cache: Path, sources: Path
) -> None:
    result = make_bundle(compression=compression)
    head, status = verify_bundle(result.path, settings=settings, allow_unsigned=True)
    assert status.state == "unsigned" and head.id == result.bundle_id
    assert {i.kind for i in head.manifest.items} == {"model", "recipe", "wheelhouse", "engine-binary"}

    imported = import_bundle(
        result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True
    )

    assert imported.status == "imported"
    model = settings.models_dir / "model.gguf"
    assert model.read_bytes() == (sources / "model.gguf").read_bytes()
    assert (settings.home / "recipes" / "demo.yaml").read_text() == (sources / "demo.yaml").read_text()
    assert sorted(p.name for p in (settings.home / "wheelhouse").iterdir()) == [
        "alpha-1.0-py3-none-any.whl",
        "beta-2.0.tar.gz",
    ]
    binary = engine_cache / "llama-server" / "0.3.36" / "bin" / "llama-server"
    assert binary.read_bytes() == (sources / "llama-server").read_bytes()
    assert os.access(binary, os.X_OK)
    assert _recipe_rows(settings) == [("demo", str(settings.home / "recipes" / "demo.yaml"))]
    # registered through the recipes service the admin API uses, audited as its writes are
    assert _audit_rows(settings) == [(f"bundle:{head.manifest.name}", "recipes.create", "demo")]
    [entry] = list_imports(settings)
    assert entry.bundle_id == result.bundle_id and entry.file == str(result.path)
    assert not Ledger(settings.home).journal_path.exists()
    _no_staging_left(settings.home, engine_cache)


def test_reimport_is_a_fast_noop_and_force_reinstalls(
    make_bundle: Any, settings: Settings, engine_cache: Path
) -> None:
    result = make_bundle(compression="none")
    import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    model = settings.models_dir / "model.gguf"
    inode = model.stat().st_ino
    # A copy cut right after the head: a no-op re-import must not read a single item byte.
    offset, _ = head_boundary(result.path)
    head_only = result.path.with_name("head-only.tar")
    head_only.write_bytes(result.path.read_bytes()[:offset])
    again = import_bundle(head_only, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert again.status == "already-imported" and model.stat().st_ino == inode
    assert len(list_imports(settings)) == 1

    model.unlink()  # something removed → a re-import installs again
    again = import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert again.status == "imported" and model.exists()
    inode = model.stat().st_ino
    forced = import_bundle(
        result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True, force=True
    )
    assert forced.status == "imported" and model.stat().st_ino != inode
    assert len(list_imports(settings)) == 1


def test_failure_after_files_moved_rolls_everything_back(
    make_bundle: Any, settings: Settings, engine_cache: Path
) -> None:
    """An operator's model and recipe of the same names: refused without --replace; with it, a
    fault after two files moved and the recipes applied restores the files and the DB rows."""
    result = make_bundle()
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "model.gguf").write_bytes(b"the operator's own model")
    register_recipes(settings, [(RECIPE.format(name="demo", model="other.gguf"), "by-hand")])
    before = snapshot(settings.home), snapshot(engine_cache), _recipe_rows(settings)

    with pytest.raises(BundleError, match="model 'model.gguf'.*different file .*--replace"):
        import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert (snapshot(settings.home), snapshot(engine_cache), _recipe_rows(settings)) == before

    (settings.models_dir / "model.gguf").unlink()  # no model conflict: the recipe's is next
    with pytest.raises(BundleError, match="recipe demo already exists with different content .*by-hand"):
        import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    (settings.models_dir / "model.gguf").write_bytes(b"the operator's own model")
    assert (snapshot(settings.home), snapshot(engine_cache), _recipe_rows(settings)) == before

    def fault(step: str) -> None:
        if step == "applied":
            raise OSError(28, "No space left on device")

    with pytest.raises(BundleError, match="rolled back"):
        import_bundle(
            result.path,
            settings=settings,
            engine_cache_dir=engine_cache,
            allow_unsigned=True,
            replace=True,
            checkpoint=fault,
        )
    assert (snapshot(settings.home), snapshot(engine_cache), _recipe_rows(settings)) == before
    assert list_imports(settings) == []
    _no_staging_left(settings.home, engine_cache)


def _crash_during_install(bundle: Path, home: str, cache: str) -> None:
    from cortexctl.core.settings import load_settings

    def crash(step: str) -> None:
        if step == "applied":
            os._exit(17)  # a power cut after every file was renamed into place, before the commit

    settings = load_settings(home=home)
    import_bundle(
        bundle,
        settings=settings,
        engine_cache_dir=Path(cache),
        allow_unsigned=True,
        replace=True,
        checkpoint=crash,
    )


def test_crash_mid_install_is_rolled_back_and_can_be_rerun(
    make_bundle: Any, settings: Settings, engine_cache: Path
) -> None:
    result = make_bundle()
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "model.gguf").write_bytes(b"previous model")
    before = snapshot(settings.models_dir)
    proc = multiprocessing.get_context("fork").Process(
        target=_crash_during_install, args=(result.path, str(settings.home), str(engine_cache))
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 17
    ledger = Ledger(settings.home)
    assert ledger.journal_path.exists()  # the crash left the journal behind …
    assert (settings.models_dir / "model.gguf").read_bytes() != b"previous model"  # … and new files in place

    outcome = recover(ledger, None)
    assert outcome is not None and outcome.startswith("rolled back")
    assert snapshot(settings.models_dir) == before
    assert not (engine_cache / "llama-server" / "0.3.36" / "bin" / "llama-server").exists()
    assert not ledger.journal_path.exists()
    _no_staging_left(settings.home, engine_cache)

    imported = import_bundle(
        result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True, replace=True
    )
    assert imported.status == "imported"
    assert hashlib.sha256((settings.models_dir / "model.gguf").read_bytes()).hexdigest() == next(
        i.sha256 for i in read_head(result.path).manifest.items if i.kind == "model"
    )


def test_crash_is_recovered_by_the_next_import(
    make_bundle: Any, settings: Settings, engine_cache: Path
) -> None:
    result = make_bundle()
    proc = multiprocessing.get_context("fork").Process(
        target=_crash_during_install, args=(result.path, str(settings.home), str(engine_cache))
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 17
    imported = import_bundle(
        result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True
    )
    assert imported.recovered and "rolled back" in imported.recovered
    assert imported.status == "imported" and (settings.models_dir / "model.gguf").exists()
    _no_staging_left(settings.home, engine_cache)


def test_wrong_architecture_is_refused(
    make_bundle: Any, settings: Settings, engine_cache: Path, monkeypatch: Any
) -> None:
    result = make_bundle()
    monkeypatch.setattr("cortexctl.bundles.install.platform.machine", lambda: "riscv64")
    with pytest.raises(BundleError, match="this host is riscv64"):
        import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert snapshot(settings.home) == {}


# ---- with a real Docker Engine ------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_round_trip_with_a_real_image(
    make_bundle: Any, settings: Settings, engine_cache: Path, docker_factory: Any, tiny_image: str
) -> None:
    client = docker_factory()
    image_id = client.images.get(tiny_image).id
    result = make_bundle(images=[tiny_image], docker_factory=docker_factory)
    assert any(i.kind == "image" and i.name == tiny_image for i in read_head(result.path).manifest.items)
    client.images.remove(tiny_image)
    assert tiny_image not in {t for i in client.images.list() for t in i.tags}

    imported = import_bundle(
        result.path,
        settings=settings,
        engine_cache_dir=engine_cache,
        allow_unsigned=True,
        docker_factory=docker_factory,
    )
    assert imported.status == "imported"
    assert client.images.get(tiny_image).id == image_id
    assert client.images.get(tiny_image).labels.get("org.cortex.test") == "bundle"
    assert f"docker:{tiny_image}" in {i.installed_to for i in imported.items}
    _no_staging_left(settings.home, engine_cache)

    again = import_bundle(
        result.path,
        settings=settings,
        engine_cache_dir=engine_cache,
        allow_unsigned=True,
        docker_factory=docker_factory,
    )
    assert again.status == "already-imported"


@pytest.mark.docker
def test_image_bundle_without_docker_is_refused_before_anything(
    make_bundle: Any, settings: Settings, engine_cache: Path, docker_factory: Any, tiny_image: str
) -> None:
    result = make_bundle(images=[tiny_image], docker_factory=docker_factory)

    def unreachable() -> Any:
        import docker

        return docker.DockerClient(base_url="unix:///nonexistent/docker.sock")

    with pytest.raises(BundleError, match="Docker Engine is not reachable"):
        import_bundle(
            result.path,
            settings=settings,
            engine_cache_dir=engine_cache,
            allow_unsigned=True,
            docker_factory=unreachable,
        )
    assert not settings.models_dir.exists()


def test_disk_errors_roll_back_with_a_clear_error(
    make_bundle: Any, settings: Settings, engine_cache: Path, monkeypatch: Any
) -> None:
    result = make_bundle()
    calls = {"n": 0}
    real_rename = os.rename

    def failing_rename(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the third file move fails: two are already in place
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr("cortexctl.bundles.transaction.os.rename", failing_rename)
    with pytest.raises(BundleError, match="failed and was rolled back: .*No space left") as exc:
        import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert "free space" in (exc.value.fix or "")
    monkeypatch.undo()
    assert snapshot(settings.home) == {} and snapshot(engine_cache) == {}
    assert list_imports(settings) == []


@pytest.mark.docker
@pytest.mark.slow
def test_failure_after_image_load_removes_the_new_image_and_restores_the_old_tag(
    make_bundle: Any, settings: Settings, engine_cache: Path, docker_factory: Any, tiny_image: str
) -> None:
    """The image is loaded before files move; a later failure (a fault at the first move) undoes it."""
    from tests.bundles.helpers import image_ids

    client = docker_factory()
    result = make_bundle(images=[tiny_image], docker_factory=docker_factory)

    def fault(step: str) -> None:
        if step == "moved-0":
            raise RuntimeError("power cut at the first move")

    client.images.remove(tiny_image)  # case 1: the image was not there before
    before = image_ids(client)
    with pytest.raises(RuntimeError, match="power cut"):
        import_bundle(
            result.path,
            settings=settings,
            engine_cache_dir=engine_cache,
            allow_unsigned=True,
            docker_factory=docker_factory,
            checkpoint=fault,
        )
    assert image_ids(client) == before

    # case 2: the tag pointed at another image before: it points there again afterwards
    previous = _make_other_image(client, tiny_image)
    with pytest.raises(RuntimeError, match="power cut"):
        import_bundle(
            result.path,
            settings=settings,
            engine_cache_dir=engine_cache,
            allow_unsigned=True,
            docker_factory=docker_factory,
            checkpoint=fault,
        )
    assert client.images.get(tiny_image).id == previous
    client.images.remove(tiny_image)


def _make_other_image(client: Any, name: str) -> str:
    import io
    import tarfile

    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w") as tar:
        data = b"a different image with the same tag\n"
        info = tarfile.TarInfo("etc/other")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repo, _, tag = name.partition(":")
    client.api.import_image_from_data(rootfs.getvalue(), repository=repo, tag=tag)
    return str(client.images.get(name).id)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_long_names_travel_in_pax_records_and_import(
    compression: str, make_bundle: Any, settings: Settings, engine_cache: Path, sources: Path
) -> None:
    """Names over tar's 100 bytes need an extended header: the bounded reader accepts real ones."""
    long = "Q" * 120 + "/" + "w" * 150 + ".safetensors"
    (sources / "big.bin").write_bytes(os.urandom(1000))
    models = [{"name": "model.gguf", "path": "model.gguf"}, {"name": long, "path": "big.bin"}]
    result = make_bundle(compression=compression, models=models)
    import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert (settings.models_dir / long).read_bytes() == (sources / "big.bin").read_bytes()
