"""An append-only JSON-lines file that holds usage records while the database is unreachable.

Replay renames the file first, so records spooled during a replay go to a fresh
file, and a replay cut short (crash, DB gone again) is retried from the renamed
file. Inserts ignore request ids already stored, so replaying twice is harmless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


class UsageSpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaying = path.with_name(path.name + ".replaying")
        self.dropped = 0  # unreadable (torn) lines skipped on replay

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Blocking: call from a worker thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> bool:
        return self.replaying.exists() or self.path.exists()

    def replay(self, insert: Callable[[list[dict[str, Any]]], None], *, batch: int) -> int:
        """Insert every spooled record; raises (and keeps the file) if the DB fails. Blocking."""
        total = 0
        for _ in range(2):  # an interrupted replay first, then what was spooled since
            if not self.replaying.exists():
                if not self.path.exists():
                    break
                os.replace(self.path, self.replaying)
            rows, skipped = _read_rows(self.replaying)
            self.dropped += skipped
            for i in range(0, len(rows), batch):
                insert(rows[i : i + batch])
            self.replaying.unlink()
            total += len(rows)
        return total


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    rows, skipped = [], 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:  # a torn last line from a crash mid-write
                log.warning("%s:%s: skipping an unreadable usage record", path, n)
                skipped += 1
                continue
            row["created_at"] = datetime.fromisoformat(row["created_at"])
            rows.append(row)
    return rows, skipped
