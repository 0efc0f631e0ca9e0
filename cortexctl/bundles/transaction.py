"""All-or-nothing install of staged files and images, with a journal for crash recovery.

Files are staged next to their destination (same filesystem, so the final move is a
rename). The journal in `$CORTEX_HOME/bundles/journal.json` lists every planned move and
every image loaded; the ledger entry is the commit point. After a crash, `recover`
reads the journal: committed → finish the clean-up; not committed → roll back to the
state before the import (previous files restored, new images removed).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cortexctl.bundles.ledger import Ledger, fsync_dir, write_json_atomic

log = logging.getLogger(__name__)

STAGING_PREFIX = ".cortex-staging-"


@dataclass
class Move:
    staged: Path
    dest: Path
    backup: Path
    mode: int = 0o644
    keep_previous: bool = False  # engine binaries: after the commit the old one stays as NAME.previous

    @property
    def previous(self) -> Path:
        return self.dest.with_name(self.dest.name + ".previous")


@dataclass
class ImageLoad:
    name: str
    previous_id: str | None  # the image the name pointed to before, if any


@dataclass
class Transaction:
    ledger: Ledger
    txid: str
    staging_dirs: list[Path] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    images: list[ImageLoad] = field(default_factory=list)
    recipes: list[Path] = field(default_factory=list)  # installed recipe files to register in the DB
    created: list[Path] = field(default_factory=list)  # folders this import created (removed if left empty)
    phase: str = "staging"

    def staging_dir(self, root: Path) -> Path:
        """A private directory on the destination's filesystem (absolute: recovery may run elsewhere)."""
        path = root.absolute() / f"{STAGING_PREFIX}{self.txid}"
        if path not in self.staging_dirs:
            self.staging_dirs.append(path)
            top = root.absolute()
            while not top.parent.exists():
                top = top.parent
            if not top.exists():
                self.created.append(top)
            self.save()  # journal it before creating, so a crash cannot leak it
            path.mkdir(parents=True)
        return path

    def save(self) -> None:
        write_json_atomic(
            self.ledger.journal_path,
            {
                "transaction": self.txid,
                "phase": self.phase,
                "staging_dirs": [str(p) for p in self.staging_dirs],
                "moves": [
                    {
                        "staged": str(m.staged.absolute()),
                        "dest": str(m.dest.absolute()),
                        "backup": str(m.backup.absolute()),
                        "mode": m.mode,
                        "keep_previous": m.keep_previous,
                    }
                    for m in self.moves
                ],
                "images": [{"name": i.name, "previous_id": i.previous_id} for i in self.images],
                "recipes": [str(p.absolute()) for p in self.recipes],
                "created": [str(p) for p in self.created],
            },
        )

    @classmethod
    def load(cls, ledger: Ledger, data: dict[str, Any]) -> Transaction:
        return cls(
            ledger=ledger,
            txid=data["transaction"],
            phase=data["phase"],
            staging_dirs=[Path(p) for p in data["staging_dirs"]],
            moves=[
                Move(
                    Path(m["staged"]),
                    Path(m["dest"]),
                    Path(m["backup"]),
                    m["mode"],
                    m.get("keep_previous", False),
                )
                for m in data["moves"]
            ],
            images=[ImageLoad(i["name"], i["previous_id"]) for i in data["images"]],
            recipes=[Path(p) for p in data.get("recipes", [])],
            created=[Path(p) for p in data.get("created", [])],
        )

    def install_files(self, after_each: Callable[[int], None] | None = None) -> None:
        """Move every staged file into place, keeping what it replaces as a backup."""
        self.phase = "installing"
        self.save()
        for n, move in enumerate(self.moves):
            move.dest.parent.mkdir(parents=True, exist_ok=True)
            if move.dest.is_dir() and not move.dest.is_symlink():
                raise OSError(f"{move.dest} is a directory; refusing to replace it with a file")
            move.backup.parent.mkdir(parents=True, exist_ok=True)
            if move.dest.exists() or move.dest.is_symlink():
                os.rename(move.dest, move.backup)
            os.chmod(move.staged, move.mode)
            os.rename(move.staged, move.dest)
            if after_each is not None:
                after_each(n)
        for parent in {m.dest.parent for m in self.moves}:
            fsync_dir(parent)

    def rollback(self, docker_client: Any | None) -> None:
        for move in reversed(self.moves):
            try:
                _undo_move(move)
            except OSError as exc:  # keep going: restore as much as we can
                log.error("rollback of %s failed: %s", move.dest, exc)
        for image in reversed(self.images):
            _undo_image(image, docker_client)
        self.finish()

    def finish(self, *, committed: bool = False) -> None:
        """Remove staging (backups included) and the journal; after a commit keep old engine binaries."""
        if committed:
            for move in self.moves:
                if move.keep_previous and (move.backup.exists() or move.backup.is_symlink()):
                    os.replace(move.backup, move.previous)
        for path in self.staging_dirs:
            shutil.rmtree(path, ignore_errors=True)
        for top in self.created:  # folders made for staging only: leave no empty trace
            for folder in sorted(
                (p for p in [top, *top.rglob("*")] if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                try:
                    folder.rmdir()
                except OSError:
                    pass  # not empty: something was installed there
        self.ledger.journal_path.unlink(missing_ok=True)


def _undo_move(move: Move) -> None:
    staged_gone = not move.staged.exists()
    backup_here = move.backup.exists() or move.backup.is_symlink()
    if staged_gone and (move.dest.exists() or move.dest.is_symlink()):
        # The new file is in place: put the old one back, or remove the new one.
        if backup_here:
            os.rename(move.backup, move.dest)
        else:
            move.dest.unlink()
    elif backup_here and not (move.dest.exists() or move.dest.is_symlink()):
        os.rename(move.backup, move.dest)  # crashed between the two renames


def _undo_image(image: ImageLoad, docker_client: Any | None) -> None:
    if docker_client is None:
        log.warning("cannot roll back image %s: Docker is not reachable; remove it by hand", image.name)
        return
    try:
        if image.previous_id:
            repo, _, tag = (
                image.name.rpartition(":") if ":" in image.name.rsplit("/", 1)[-1] else (image.name, "", "")
            )
            docker_client.images.get(image.previous_id).tag(repo, tag or "latest")
        else:
            docker_client.images.remove(image.name)
    except Exception as exc:  # noqa: BLE001 - best effort; logged for the operator
        log.warning("cannot roll back image %s: %s", image.name, exc)


def clean_stale_staging(roots: list[Path]) -> list[Path]:
    """Staging folders no journal owns (the caller holds the import lock): remove them."""
    removed = []
    for root in roots:
        try:
            found = [p for p in root.absolute().iterdir() if p.name.startswith(STAGING_PREFIX)]
        except OSError:
            continue
        for path in found:
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed stale import staging %s", path)
            removed.append(path)
    return removed


def recover(
    ledger: Ledger, docker_factory: Any | None, on_committed: Callable[[Transaction], None] | None = None
) -> str | None:
    """Finish or undo an import that was interrupted; returns what was done, if anything.

    Committed (the ledger has its entry): `on_committed` finishes what follows the commit
    point (registering the journalled recipes again, idempotently), then clean-up.
    """
    import json

    if not ledger.journal_path.is_file():
        return None
    try:
        data = json.loads(ledger.journal_path.read_text(encoding="utf-8"))
        tx = Transaction.load(ledger, data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("unreadable import journal %s: %s; moving it aside", ledger.journal_path, exc)
        os.replace(ledger.journal_path, ledger.journal_path.with_suffix(".corrupt"))
        return "discarded an unreadable journal"
    if ledger.find(transaction=tx.txid) is not None:
        if on_committed is not None:
            on_committed(tx)
        tx.finish(committed=True)
        return f"finished committed import {tx.txid}"
    client = None
    if tx.images and docker_factory is not None:
        try:
            client = docker_factory()
        except Exception as exc:  # noqa: BLE001 - rollback goes on without Docker
            log.warning("Docker unreachable during recovery: %s", exc)
    tx.rollback(client)
    return f"rolled back interrupted import {tx.txid}"
