"""`bundle verify` and `bundle import`: one streaming pass, then an all-or-nothing install.

Import reads the bundle once: every byte is hashed as it is written into staging, so
nothing reaches a destination before the whole bundle has verified. Then images are
loaded, files renamed into place, recipes registered, and the ledger entry written
(the commit point). Any failure, or a crash, rolls back to the state before.
"""

from __future__ import annotations

import logging
import os
import platform
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cortexctl import __version__
from cortexctl.bundles import images as image_ops
from cortexctl.bundles.container import BundleReader, Head
from cortexctl.bundles.errors import BundleError, refused
from cortexctl.bundles.ledger import Ledger, LedgerEntry, LedgerItem
from cortexctl.bundles.manifest import PLATFORM_BOUND, Item
from cortexctl.bundles.progress import NullProgress, Progress
from cortexctl.bundles.recipes_adapter import register_recipes
from cortexctl.bundles.signing import TRUSTED_KEYS_DIR, SignatureStatus, verify_signature
from cortexctl.bundles.transaction import ImageLoad, Move, Transaction, recover
from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)

RecipeRegistrar = Callable[[Settings, list[tuple[str, str]]], None]


@dataclass(frozen=True)
class Destinations:
    """Where each kind of item lands on this host."""

    models_dir: Path
    recipes_dir: Path
    wheelhouse_dir: Path
    engine_cache_dir: Path  # ${XDG_CACHE_HOME:-~/.cache}/cortex

    @classmethod
    def for_settings(cls, settings: Settings, *, engine_cache_dir: Path) -> Destinations:
        return cls(
            settings.models_dir, settings.home / "recipes", settings.home / "wheelhouse", engine_cache_dir
        )

    def root(self, item: Item, home: Path) -> Path:
        return {
            "model": self.models_dir,
            "recipe": self.recipes_dir,
            "wheelhouse": self.wheelhouse_dir,
            "engine-binary": self.engine_cache_dir,
            "image": home / "bundles",
        }[item.kind]

    def relative(self, item: Item) -> str:
        if item.kind == "engine-binary":
            tool, version = item.name.split("/", 1)
            return f"{tool}/{version}/bin/{tool}"  # the layout scripts/build-llama-server.sh caches
        if item.kind == "image":
            return item.path.rsplit("/", 1)[-1]
        return item.name


@dataclass
class ImportResult:
    bundle_id: str
    name: str
    status: str  # imported | already-imported
    signature: SignatureStatus
    items: list[LedgerItem] = field(default_factory=list)
    recovered: str | None = None


def trusted_dir(settings: Settings) -> Path:
    return settings.home / TRUSTED_KEYS_DIR


def check_platform(head: Head) -> None:
    target = head.manifest.platform
    bound = [i for i in head.manifest.items if i.kind in PLATFORM_BOUND]
    if bound and target.machine != platform.machine():
        raise refused(
            bound[0].label,
            f"built for {target.machine} ({target.platform}), this host is {platform.machine()}",
            fix="Export the bundle on a host of the same architecture.",
        )


def verify_bundle(
    path: Path, *, settings: Settings, allow_unsigned: bool, progress: Progress | None = None
) -> tuple[Head, SignatureStatus]:
    """Check the signature, then every entry and checksum, streaming; installs nothing."""
    with BundleReader(path) as reader:
        head = reader.head()
        status = verify_signature(
            head.manifest_bytes,
            head.signature,
            trusted_dir=trusted_dir(settings),
            allow_unsigned=allow_unsigned,
        )
        progress = progress or NullProgress()
        progress.start(f"verify {path.name}", head.manifest.total_size)
        reader.read_items(lambda _item: None, progress)
        progress.finish()
    return head, status


class _StagingSink:
    """Receives verified bytes into per-destination staging dirs; fsyncs each file."""

    def __init__(self, tx: Transaction, dest: Destinations, home: Path) -> None:
        self.tx, self.dest, self.home = tx, dest, home
        self.staged: dict[str, Path] = {}
        self._open: BinaryIO | None = None

    def __call__(self, item: Item) -> BinaryIO:
        self.close()
        path = self.tx.staging_dir(self.dest.root(item, self.home)) / "new" / self.dest.relative(item)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._open = path.open("xb")
        self.staged[item.path] = path
        return self._open

    def close(self) -> None:
        if self._open is not None:
            self._open.flush()
            os.fsync(self._open.fileno())
            self._open.close()
            self._open = None


def import_bundle(
    path: Path,
    *,
    settings: Settings,
    engine_cache_dir: Path,
    allow_unsigned: bool = False,
    force: bool = False,
    docker_factory: image_ops.DockerFactory | None = None,
    register: RecipeRegistrar = register_recipes,
    progress: Progress | None = None,
) -> ImportResult:
    progress = progress or NullProgress()
    dest = Destinations.for_settings(settings, engine_cache_dir=engine_cache_dir)
    ledger = Ledger(settings.home)
    with ledger.lock():
        recovered = recover(ledger, docker_factory)
        with BundleReader(path) as reader:
            head = reader.head()
            status = verify_signature(
                head.manifest_bytes,
                head.signature,
                trusted_dir=trusted_dir(settings),
                allow_unsigned=allow_unsigned,
            )
            check_platform(head)
            wants_docker = any(i.kind == "image" for i in head.manifest.items)
            client = (
                image_ops.connect(docker_factory, why="the bundle holds images") if wants_docker else None
            )
            done = None if force else ledger.find(bundle_id=head.id)
            if done is not None and _still_installed(done, client):
                return ImportResult(
                    head.id, head.manifest.name, "already-imported", status, done.items, recovered
                )
            tx = Transaction(ledger=ledger, txid=uuid.uuid4().hex[:12])
            tx.save()
            try:
                entry = _install(reader, head, tx, dest, settings, client, register, progress, path, status)
            except OSError as exc:  # disk full, permissions: roll back and say where
                tx.rollback(client)
                raise BundleError(
                    f"import of {path.name} failed and was rolled back: {exc}",
                    fix=f"Check free space and permissions under {settings.home} and {engine_cache_dir}, "
                    "then retry.",
                ) from None
            except BaseException:
                tx.rollback(client)
                raise
            tx.finish()
    return ImportResult(head.id, head.manifest.name, "imported", status, entry.items, recovered)


def _install(
    reader: BundleReader,
    head: Head,
    tx: Transaction,
    dest: Destinations,
    settings: Settings,
    client: object,
    register: RecipeRegistrar,
    progress: Progress,
    path: Path,
    status: SignatureStatus,
) -> LedgerEntry:
    sink = _StagingSink(tx, dest, settings.home)
    progress.start(f"import {path.name}", head.manifest.total_size)
    try:
        reader.read_items(sink, progress)
    finally:
        sink.close()
        progress.finish()
    # Everything verified. Now images (idempotent, content-addressed), then the files.
    items: list[LedgerItem] = []
    recipes: list[tuple[str, str]] = []
    for item in head.manifest.items:
        staged = sink.staged[item.path]
        if item.kind == "image":
            tx.images.append(ImageLoad(item.name, image_ops.image_id(client, item.name)))
            tx.save()  # journal first: a crash mid-load still rolls the image back
            image_ops.load_image(client, item.name, staged)
            target = f"docker:{item.name}"
        else:
            final = dest.root(item, settings.home) / dest.relative(item)
            backup = staged.parents[len(Path(dest.relative(item)).parts)] / "backup" / dest.relative(item)
            mode = 0o755 if item.kind == "engine-binary" else 0o644
            tx.moves.append(Move(staged=staged, dest=final, backup=backup, mode=mode))
            target = str(final)
            if item.kind == "recipe":
                recipes.append((staged.read_text(encoding="utf-8"), str(final)))
        items.append(
            LedgerItem(
                kind=item.kind, name=item.name, size=item.size, sha256=item.sha256, installed_to=target
            )
        )
    tx.install_files()
    register(settings, recipes)
    entry = LedgerEntry(
        bundle_id=head.id,
        transaction=tx.txid,
        name=head.manifest.name,
        file=str(path.resolve()),
        imported_at=datetime.now(UTC),
        cortex_version=__version__,
        signature=status.state,
        signed_by=status.key_id,
        items=items,
    )
    tx.ledger.add(entry)  # the commit point
    return entry


def _still_installed(entry: LedgerEntry, client: object) -> bool:
    """Cheap re-import check: every file present at its recorded size, every image present."""
    for item in entry.items:
        if item.installed_to.startswith("docker:"):
            if client is None or image_ops.image_id(client, item.name) is None:
                return False
            continue
        p = Path(item.installed_to)
        try:
            if p.stat().st_size != item.size:
                return False
        except OSError:
            return False
    return True


def list_imports(settings: Settings) -> list[LedgerEntry]:
    return Ledger(settings.home).entries()


__all__ = ["BundleError", "Destinations", "ImportResult", "import_bundle", "list_imports", "verify_bundle"]
