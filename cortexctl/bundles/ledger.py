"""What was imported, when, from which file: a JSON ledger in `$CORTEX_HOME/bundles/`.

JSON rather than a DB table because `bundle import` runs before the daemon has ever
started (install.sh --bundle) and must work without a database server. Writes are
atomic (temp file + fsync + rename) and imports hold an exclusive lock file.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cortexctl.bundles.errors import BundleError

LEDGER_VERSION = 1


class LedgerItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str
    name: str
    size: int
    sha256: str
    installed_to: str  # a path, or "docker:<image>" for images


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bundle_id: str
    transaction: str
    name: str
    file: str
    imported_at: datetime
    cortex_version: str
    signature: str  # trusted | unsigned | untrusted-key
    signed_by: str | None = None
    items: list[LedgerItem]


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Ledger:
    def __init__(self, home: Path) -> None:
        self.dir = home.absolute() / "bundles"  # absolute: the journal must work from any folder
        self.path = self.dir / "ledger.json"
        self.journal_path = self.dir / "journal.json"

    def entries(self) -> list[LedgerEntry]:
        if not self.path.is_file():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [LedgerEntry.model_validate(e) for e in raw.get("imports", [])]
        except (OSError, json.JSONDecodeError, ValidationError, AttributeError) as exc:
            raise BundleError(
                f"the bundle ledger {self.path} is unreadable: {exc}",
                fix="Restore it from a backup or move it aside (imports will be redone).",
            ) from None

    def find(self, *, bundle_id: str | None = None, transaction: str | None = None) -> LedgerEntry | None:
        for entry in reversed(self.entries()):
            if (bundle_id and entry.bundle_id == bundle_id) or (
                transaction and entry.transaction == transaction
            ):
                return entry
        return None

    def add(self, entry: LedgerEntry) -> None:
        entries = [e for e in self.entries() if e.bundle_id != entry.bundle_id] + [entry]
        write_json_atomic(
            self.path, {"version": LEDGER_VERSION, "imports": [e.model_dump(mode="json") for e in entries]}
        )

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One import at a time per $CORTEX_HOME."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BundleError(
                    "another bundle import is running on this host",
                    fix="Wait for it to finish, then retry.",
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
