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
from cortexctl.bundles import content
from cortexctl.bundles import images as image_ops
from cortexctl.bundles.container import BundleReader, Head
from cortexctl.bundles.errors import BundleError, refused
from cortexctl.bundles.ledger import Ledger, LedgerEntry, LedgerItem
from cortexctl.bundles.manifest import PLATFORM_BOUND, Item
from cortexctl.bundles.progress import NullProgress, Progress
from cortexctl.bundles.recipes_adapter import RecipeSession, register_recipe_files
from cortexctl.bundles.signing import TRUSTED_KEYS_DIR, SignatureStatus, verify_signature
from cortexctl.bundles.transaction import ImageLoad, Move, Transaction, clean_stale_staging, recover
from cortexctl.core.settings import Settings
from cortexctl.recipes.schema import Recipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destinations:
    """Where each kind of item lands on this host."""

    models_dir: Path
    recipes_dir: Path
    wheelhouse_dir: Path
    engine_cache_dir: Path  # ${XDG_CACHE_HOME:-~/.cache}/cortex

    @classmethod
    def for_settings(cls, settings: Settings, *, engine_cache_dir: Path) -> Destinations:
        home = settings.home.absolute()  # absolute: the journal must work from any folder
        return cls(
            settings.models_dir.absolute(), home / "recipes", home / "wheelhouse", engine_cache_dir.absolute()
        )

    def roots(self, home: Path) -> list[Path]:
        """Every folder an import stages in (where stale staging can be left)."""
        return [
            self.models_dir,
            self.recipes_dir,
            self.wheelhouse_dir,
            self.engine_cache_dir,
            home / "bundles",
        ]

    def root(self, item: Item, home: Path) -> Path:
        return {
            "model": self.models_dir,
            "recipe": self.recipes_dir,
            "wheelhouse": self.wheelhouse_dir,
            "engine-binary": self.engine_cache_dir,
            "image": home.absolute() / "bundles",
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


class _Bounded:
    """A staging file that refuses to grow past the item's declared size."""

    def __init__(self, fh: BinaryIO, item: Item) -> None:
        self.fh, self.item, self.written = fh, item, 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self.item.size:
            raise refused(self.item.label, f"more than the {self.item.size} bytes the manifest declares")
        return self.fh.write(data)


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
        return _Bounded(self._open, item)  # type: ignore[return-value]

    def close(self) -> None:
        if self._open is not None:
            self._open.flush()
            os.fsync(self._open.fileno())
            self._open.close()
            self._open = None


Checkpoint = Callable[[str], None]
"""Called at each step of an import (tests interrupt there): staged, moved-N, applied, committed."""


def _no_checkpoint(_step: str) -> None:
    pass


def import_bundle(
    path: Path,
    *,
    settings: Settings,
    engine_cache_dir: Path,
    allow_unsigned: bool = False,
    force: bool = False,
    replace: bool = False,
    docker_factory: image_ops.DockerFactory | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint = _no_checkpoint,
) -> ImportResult:
    progress = progress or NullProgress()
    dest = Destinations.for_settings(settings, engine_cache_dir=engine_cache_dir)
    home = settings.home.absolute()
    ledger = Ledger(home)
    with ledger.lock():
        recovered = recover(
            ledger, docker_factory, on_committed=lambda tx: register_recipe_files(settings, tx.recipes)
        )
        stale = clean_stale_staging(dest.roots(home))
        if stale:
            recovered = (
                recovered + "; " if recovered else ""
            ) + f"removed {len(stale)} stale staging folder(s)"
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
            items = head.manifest.items
            finals = {i.path: dest.root(i, home) / dest.relative(i) for i in items if i.kind != "image"}
            plan = content.check_files(items, finals, status=status, replace=replace)
            content.check_free_space(items, {i.path: dest.root(i, home) for i in items})
            tx = Transaction(ledger=ledger, txid=uuid.uuid4().hex[:12])
            tx.save()
            job = _Job(reader, head, tx, dest, settings, client, plan, replace, checkpoint)
            try:
                entry = job.run(progress, path, status)
            except OSError as exc:  # disk full, permissions: roll back and say where
                if tx.phase == "committed":
                    raise
                tx.rollback(client)
                raise BundleError(
                    f"import of {path.name} failed and was rolled back: {exc}",
                    fix=f"Check free space and permissions under {settings.home} and {engine_cache_dir}, "
                    "then retry.",
                ) from None
            except BaseException:
                if tx.phase != "committed":  # after the commit point the next run finishes it instead
                    tx.rollback(client)
                raise
            tx.finish(committed=True)
    return ImportResult(head.id, head.manifest.name, "imported", status, entry.items, recovered)


@dataclass
class _Job:
    """One import after the checks on the head: stage, check content, move, register, commit."""

    reader: BundleReader
    head: Head
    tx: Transaction
    dest: Destinations
    settings: Settings
    client: object
    plan: content.Plan
    replace: bool
    checkpoint: Checkpoint

    def run(self, progress: Progress, path: Path, status: SignatureStatus) -> LedgerEntry:
        home = self.settings.home.absolute()
        sink = _StagingSink(self.tx, self.dest, home)
        progress.start(f"import {path.name}", self.head.manifest.total_size)
        try:
            self.reader.read_items(sink, progress)
        finally:
            sink.close()
            progress.finish()
        self.checkpoint("staged")
        items = self.head.manifest.items
        content.check_wheel_files(items, sink.staged)
        recipes = self._recipes(sink.staged)
        db = RecipeSession(self.settings) if recipes or self.plan.written_models else None
        try:
            if db is not None:
                db.check_names(recipes, replace=self.replace)
                db.check_pins(self.plan.written_models, {r.name for _, r, _, _ in recipes})
            ledger_items = self._place(items, sink.staged)
            self.tx.recipes = [final for _, _, _, final in recipes]
            self.tx.install_files(lambda n: self.checkpoint(f"moved-{n}"))
            if db is not None:
                db.apply([(text, str(final)) for _, _, text, final in recipes])
            self.checkpoint("applied")
            entry = LedgerEntry(
                bundle_id=self.head.id,
                transaction=self.tx.txid,
                name=self.head.manifest.name,
                file=str(path.resolve()),
                imported_at=datetime.now(UTC),
                cortex_version=__version__,
                signature=status.state,
                signed_by=status.key_id,
                items=ledger_items,
            )
            self.tx.ledger.add(entry)  # the commit point
            self.tx.phase = "committed"
            self.checkpoint("committed")
            if db is not None:
                try:
                    db.commit()
                except Exception as exc:
                    raise BundleError(
                        f"{path.name} was imported, but registering its recipes failed: {exc}",
                        fix="Run `cortexctl doctor` (or any import) when the database is back: it finishes "
                        "the registration.",
                    ) from None
            return entry
        finally:
            if db is not None:
                db.close()

    def _recipes(self, staged: dict[str, Path]) -> list[tuple[Item, Recipe, str, Path]]:
        items = self.head.manifest.items
        models = {i.name: i for i in items if i.kind == "model"}
        out = []
        for item in items:
            if item.kind != "recipe":
                continue
            final = self.dest.root(item, self.settings.home.absolute()) / self.dest.relative(item)
            try:
                text = staged[item.path].read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                raise refused(item.label, "not UTF-8 text") from None
            recipe = content.check_recipe(text, final=final, settings=self.settings, item=item, models=models)
            out.append((item, recipe, text, final))
        return out

    def _place(self, items: list[Item], staged_paths: dict[str, Path]) -> list[LedgerItem]:
        """Images loaded (journalled first), file moves planned; returns the ledger's items."""
        out: list[LedgerItem] = []
        home = self.settings.home.absolute()
        for item in items:
            staged = staged_paths[item.path]
            if item.kind == "image":
                self.tx.images.append(ImageLoad(item.name, image_ops.image_id(self.client, item.name)))
                self.tx.save()  # journal first: a crash mid-load still rolls the image back
                image_ops.load_image(self.client, item.name, staged)
                target = f"docker:{item.name}"
            else:
                rel = self.dest.relative(item)
                final = self.dest.root(item, home) / rel
                backup = staged.parents[len(Path(rel).parts)] / "backup" / rel
                mode = 0o755 if item.kind == "engine-binary" else 0o644
                keep = final in self.plan.replaced_engines
                self.tx.moves.append(
                    Move(staged=staged, dest=final, backup=backup, mode=mode, keep_previous=keep)
                )
                target = str(final)
            out.append(
                LedgerItem(
                    kind=item.kind, name=item.name, size=item.size, sha256=item.sha256, installed_to=target
                )
            )
        return out


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


def tidy_imports(
    settings: Settings, *, engine_cache_dir: Path, docker_factory: image_ops.DockerFactory | None = None
) -> list[str]:
    """Finish or roll back an interrupted import and remove stale staging (`cortexctl doctor`)."""
    ledger = Ledger(settings.home)
    if not ledger.dir.is_dir():
        return []  # no import ever ran in this home: nothing to tidy (and nothing to create)
    dest = Destinations.for_settings(settings, engine_cache_dir=engine_cache_dir)
    with ledger.lock():
        done = recover(
            ledger, docker_factory, on_committed=lambda tx: register_recipe_files(settings, tx.recipes)
        )
        stale = clean_stale_staging(dest.roots(settings.home.absolute()))
    return ([done] if done else []) + [f"removed stale staging {p}" for p in stale]


def list_imports(settings: Settings) -> list[LedgerEntry]:
    return Ledger(settings.home).entries()


__all__ = ["BundleError", "Destinations", "ImportResult", "import_bundle", "list_imports", "verify_bundle"]
