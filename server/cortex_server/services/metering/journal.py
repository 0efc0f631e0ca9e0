"""The usage journal: every usage record is written before its response ends.

Records are appended as JSON lines to the current segment file. How far "written" goes is
the `usage_journal_fsync` setting (`FsyncMode`):

- "every_second" (default, like Redis's appendfsync everysec): the record is written to the
  file on the event loop (a page-cache write: microseconds) before its response ends, so it
  survives any death of the daemon (SIGKILL, OOM kill, a crash); `sync()` fdatasyncs it within
  a second, so a kernel crash or power loss can lose at most the last second.
- "always": the record is fdatasync'd before its response ends, so it survives a power loss
  too. Appends from concurrent requests are committed together (group commit): while one
  write+fdatasync is in flight, the records that arrive meanwhile queue up and go in the next
  one. Measured on a 2-vCPU VM (bench/gateway_bench.py) the fdatasync and the thread hand-off
  around it cost 0.1-0.35 ms of CPU per request: more than the rest of the gateway together.

The writer seals the current segment now and then, inserts the sealed segments'
records into the database (idempotent by request id) and deletes them. Segments a
previous process left behind (a crash, a DB outage) are sealed segments too, so
replay on start is the same path.

When a write fails (disk full, the size cap reached) the journal says so loudly
(`error`) and keeps the records in memory for the writer to insert directly; the
daemon's policy decides whether new inference is refused meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

log = logging.getLogger(__name__)

SEGMENT_GLOB = "usage-*.jsonl"
FsyncMode = Literal["always", "every_second"]
MIN_FREE_BYTES = 1 << 20  # below this the journal stays "full" rather than flapping
MIN_FREE_SHARE = 4  # ...or below 1/4 of a filesystem smaller than 4 MiB (it could never have 1 MiB free)


@dataclass
class Segment:
    path: Path
    size: int = 0
    rows: list[dict[str, Any]] | None = field(default_factory=list)  # None: read it from the file
    fd: int | None = None


class UsageJournal:
    def __init__(self, directory: Path, *, max_bytes: int, fsync: FsyncMode = "always") -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync_each_group = fsync == "always"  # else: write now, `sync()` within a second
        self._unsynced = False  # written since the last fdatasync ("every_second")
        self._directory_unsynced = False  # a segment created since the last directory fsync
        self._lock = threading.Lock()  # file state: the commit thread vs. the writer's seal/delete
        self._current: Segment | None = None
        self._sealed: list[Segment] = []
        self._bytes = 0
        self._names = itertools.count(1)
        self._stamp = f"{time.time_ns():x}-{os.getpid()}"
        # loop side: the group being filled, and its future (resolved when it is on disk)
        self._buf: list[bytes] = []
        self._rows: list[dict[str, Any]] = []
        self._group: asyncio.Future[bool] | None = None
        self._commit_lock: asyncio.Lock | None = None
        self._unjournaled: list[dict[str, Any]] = []  # writes failed: only in memory
        self.error: str | None = None
        self.records_journaled = 0
        self.records_unjournaled = 0  # served while nothing durable could be written
        self.commits = 0
        self.unreadable = 0
        self._recover()

    # -- loop side -------------------------------------------------------------------------
    def enqueue(self, row: dict[str, Any]) -> asyncio.Future[bool] | None:
        """Queue one record for the next group commit; its future says whether it reached disk."""
        self._buf.append(orjson.dumps(row) + b"\n")
        self._rows.append(row)
        if self._group is None:
            try:
                self._group = asyncio.get_running_loop().create_future()
            except RuntimeError:  # no loop (a synchronous caller): flush() commits it
                return None
        return self._group

    def append(self, row: dict[str, Any]) -> bool:
        """For "every_second": write one record now, on the loop (no thread hop, no fsync); False
        if it could not be written (then it is held in memory, as a failed group commit's are)."""
        rows = [row]
        error = self._write(orjson.dumps(row) + b"\n", rows)
        self._note(error, rows)
        return error is None

    @property
    def queued(self) -> int:
        return len(self._rows)

    async def commit(self) -> None:
        """Write and fsync everything queued (one group per call; callers serialize)."""
        if self._commit_lock is None:
            self._commit_lock = asyncio.Lock()
        async with self._commit_lock:
            if not self._rows:
                return
            data, rows, group = b"".join(self._buf), self._rows, self._group
            self._buf, self._rows, self._group = [], [], None
            error = await asyncio.to_thread(self._write, data, rows)
            self._note(error, rows)
            if group is not None and not group.done():
                group.set_result(error is None)

    def _note(self, error: str | None, rows: list[dict[str, Any]]) -> None:
        if error is None:
            self.records_journaled += len(rows)
            self.commits += 1
            if self.error is not None:
                log.warning("usage journal %s is writable again", self.directory)
                self.error = None
            return
        self._unjournaled.extend(rows)
        self.records_unjournaled += len(rows)
        if self.error is None:
            log.error(
                "USAGE RECORDS ARE NOT DURABLE: the usage journal %s cannot be written (%s); "
                "records are held in memory only until the database takes them",
                self.directory,
                error,
            )
        self.error = error

    def take_unjournaled(self) -> list[dict[str, Any]]:
        rows, self._unjournaled = self._unjournaled, []
        return rows

    def give_back(self, rows: list[dict[str, Any]]) -> None:
        self._unjournaled[:0] = rows

    @property
    def unjournaled_pending(self) -> int:
        return len(self._unjournaled)

    # -- thread side -----------------------------------------------------------------------
    def _write(self, data: bytes, rows: list[dict[str, Any]]) -> str | None:
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                return f"size cap of {self.max_bytes} bytes reached (usage_journal_max_bytes)"
            try:
                seg = self._current or self._open_segment()
            except OSError as exc:
                return f"cannot create a segment: {exc.strerror or exc}"
            assert seg.fd is not None
            try:
                view = memoryview(data)
                while view:
                    n = os.write(seg.fd, view)
                    view = view[n:]
                if self.fsync_each_group:
                    os.fdatasync(seg.fd)
                else:
                    self._unsynced = True
            except OSError as exc:
                try:  # no half record left behind for a replay to trip on
                    os.ftruncate(seg.fd, seg.size)
                except OSError:
                    pass
                return exc.strerror or str(exc)
            seg.size += len(data)
            self._bytes += len(data)
            assert seg.rows is not None
            seg.rows.extend(rows)
            return None

    def _open_segment(self) -> Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"usage-{self._stamp}-{next(self._names):06d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        if self.fsync_each_group:
            self._sync_directory()  # the new name itself must survive a power loss
        else:
            self._directory_unsynced = True  # `sync()` does it, off the loop
        self._current = Segment(path=path, fd=fd)
        return self._current

    def _sync_directory(self) -> None:
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def sync(self) -> None:
        """For "every_second": fdatasync what was written since the last call. Blocking (a thread).

        The fsync runs on a duplicate of the segment's descriptor, outside the lock, so the
        loop's appends never wait for the disk."""
        with self._lock:
            seg, unsynced, new_dir = self._current, self._unsynced, self._directory_unsynced
            self._unsynced = self._directory_unsynced = False
            fd = os.dup(seg.fd) if unsynced and seg is not None and seg.fd is not None else None
        try:
            if new_dir:
                self._sync_directory()
            if fd is not None:
                os.fdatasync(fd)
        except OSError as exc:
            log.error(
                "USAGE RECORDS MAY NOT SURVIVE A POWER LOSS: fsync of the usage journal %s failed (%s)",
                self.directory,
                exc.strerror or exc,
            )
            with self._lock:
                self._unsynced, self._directory_unsynced = True, True  # try again next time
        finally:
            if fd is not None:
                os.close(fd)

    def _recover(self) -> None:
        """Segments a previous process left: sealed, their records read at replay."""
        for path in sorted(self.directory.glob(SEGMENT_GLOB)):
            size = path.stat().st_size
            self._sealed.append(Segment(path=path, size=size, rows=None))
            self._bytes += size

    def seal(self) -> list[Segment]:
        """Close the current segment; every sealed segment not yet in the database. Blocking."""
        fd, unsynced = None, False
        with self._lock:
            seg = self._current
            if seg is not None and seg.size:
                fd, seg.fd = seg.fd, None
                unsynced, self._unsynced = self._unsynced, False  # what is unsynced is in this segment
                self._sealed.append(seg)
                self._current = None
            sealed = list(self._sealed)
        if fd is not None:  # closed outside the lock: appends go to the next segment meanwhile
            try:
                if unsynced:
                    os.fdatasync(fd)  # "every_second": on disk before it leaves the syncer's sight
            except OSError as exc:
                log.error("fsync of a sealed usage journal segment failed (%s)", exc.strerror or exc)
            finally:
                os.close(fd)
        return sealed

    def rows_of(self, seg: Segment) -> list[dict[str, Any]]:
        if seg.rows is not None:
            return seg.rows
        rows, skipped = read_rows(seg.path)
        self.unreadable += skipped
        return rows

    def done(self, seg: Segment) -> None:
        """The segment's records are in the database: delete it. Blocking."""
        with self._lock:
            seg.path.unlink(missing_ok=True)
            self._sealed.remove(seg)
            self._bytes -= seg.size

    def recheck(self) -> None:
        """After a failure: room again (under the cap, free space on disk)? Then let writes try."""
        if self.error is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            st = os.statvfs(self.directory)
        except OSError:
            return
        need = min(MIN_FREE_BYTES, st.f_blocks * st.f_frsize // MIN_FREE_SHARE)
        if self._bytes < self.max_bytes and st.f_bavail * st.f_frsize > need:
            log.warning("usage journal %s has room again; retrying writes", self.directory)
            self.error = None

    @property
    def bytes_on_disk(self) -> int:
        return self._bytes

    def close(self) -> None:
        with self._lock:
            if self._current is not None and self._current.fd is not None:
                os.close(self._current.fd)
                self._current.fd = None


def read_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    rows, skipped = [], 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:  # a torn last line (a crash mid-write)
                log.warning("%s:%s: skipping an unreadable usage record", path, n)
                skipped += 1
                continue
            row["created_at"] = datetime.fromisoformat(row["created_at"])
            rows.append(row)
    return rows, skipped
