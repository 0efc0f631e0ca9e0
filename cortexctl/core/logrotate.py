"""Size caps for the logs other processes write: the daemon's `cortexd.out` (its stdout/stderr,
written by the daemon process that `cortexctl up` started) and the engines' logs under
`logs/engines/` (an engine's stdout/stderr, which must outlive the daemon that started it).

Those writers hold their file open (O_APPEND) and cannot be told to reopen it, so rotation is
copy-truncate: the newest `max_bytes` of the file go to `NAME.1` (older copies shift to `.2` …
`.N`; the oldest is dropped) and the live file is truncated; the writer's next append lands at
its new end. Lines written between the copy and the truncate (microseconds) are lost: the
price of not owning the writer. The daemon's own structured log (`cortexd.log`) is rotated by
its logging handler with the same caps (cortex_server/core/logging.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
CHECK_INTERVAL_S = 5.0


def backup_path(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def rotate_if_over(path: Path, *, max_bytes: int, backups: int) -> bool:
    """Copy-truncate `path` if it is larger than `max_bytes`; True when it rotated."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    for index in range(backups - 1, 0, -1):
        older = backup_path(path, index)
        if older.exists():
            os.replace(older, backup_path(path, index + 1))
    tmp = path.with_name(f".{path.name}.rotating")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # private, as the logs are
    with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
        # The writer may still be appending: take the newest `max_bytes` as of now and no more,
        # so a copy never exceeds the cap (a burst beyond it keeps only its newest part).
        end = os.fstat(src.fileno()).st_size
        src.seek(max(0, end - max_bytes))
        left = min(end, max_bytes)
        while left > 0 and (chunk := src.read(min(_CHUNK, left))):
            dst.write(chunk)
            left -= len(chunk)
    os.replace(tmp, backup_path(path, 1))
    os.truncate(path, 0)
    return True


def managed_logs(settings: Settings) -> Iterable[Path]:
    """The logs other processes write into this home: cortexd.out and every engine log."""
    yield settings.logs_dir / "cortexd.out"
    engines = settings.logs_dir / "engines"
    if engines.is_dir():
        yield from sorted(p for p in engines.glob("*.log") if p.is_file())


def rotate_logs(settings: Settings) -> list[Path]:
    """One pass over the managed logs; the ones that rotated."""
    return [
        path
        for path in managed_logs(settings)
        if rotate_if_over(path, max_bytes=settings.log_max_bytes, backups=settings.log_backups)
    ]


async def rotate_forever(settings: Settings, *, interval_s: float = CHECK_INTERVAL_S) -> None:
    """The daemon's background task (one per home: the supervising process runs it)."""
    while True:
        try:
            for path in await asyncio.to_thread(rotate_logs, settings):
                log.info("rotated %s (over %d bytes)", path, settings.log_max_bytes)
        except OSError as exc:  # a full disk must not end rotation: the next pass may free space
            log.warning("log rotation failed: %s", exc)
        await asyncio.sleep(interval_s)
