"""`usage_journal_fsync`: what each mode has done to a usage record by the time its response ends.

"every_second": written to the segment file before `submit` returns (so a SIGKILL loses nothing:
`tests/reliability/test_journal_sigkill.py` kills a daemon under load in both modes), fdatasync'd
within a second by a thread, never on the event loop. "always": fdatasync'd before `durable()`
returns. The fdatasync calls are counted by wrapping the real `os.fdatasync`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex_server.db.engine import make_engine
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.services.metering.journal import UsageJournal, read_rows
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.metering.writer import SYNC_INTERVAL_S, UsageWriter
from tests.gateway.test_usage_writer import row


class FsyncLog:
    """Every fdatasync of a journal file: (the file's path, the calling thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def on(self, directory: Path) -> list[int]:
        return [thread for path, thread in self.calls if path.startswith(str(directory))]


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncLog]:
    log, real = FsyncLog(), os.fdatasync

    def counting(fd: int) -> None:
        log.calls.append((os.readlink(f"/proc/self/fd/{fd}"), threading.get_ident()))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    yield log


def writer_for(tmp_path: Path, fsync: str) -> tuple[UsageWriter, Path]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to_head(engine)
    directory = tmp_path / "journal"
    journal = UsageJournal(directory, max_bytes=1 << 20, fsync=fsync)  # type: ignore[arg-type]
    writer = UsageWriter(engine=engine, spool=UsageSpool(tmp_path / "spool.jsonl"), journal=journal)
    return writer, directory


def journaled_ids(directory: Path) -> set[str]:
    return {r["request_id"] for p in directory.glob("usage-*.jsonl") for r in read_rows(p)[0]}


async def test_every_second_writes_the_record_before_submit_returns_and_never_fsyncs_on_the_loop(
    tmp_path: Path, fsyncs: FsyncLog
) -> None:
    writer, directory = writer_for(tmp_path, "every_second")
    writer.start()
    try:
        records = [row() for _ in range(20)]
        for r in records:
            writer.submit(r)
            assert r["request_id"] in journaled_ids(directory)  # in the file, not in a queue
            assert await writer.durable()  # nothing left to wait for
        assert fsyncs.on(directory) == [], "fdatasync ran on the event loop's path"
        deadline = time.monotonic() + SYNC_INTERVAL_S + 2
        while not fsyncs.on(directory) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        threads = fsyncs.on(directory)
        assert threads, f"nothing fdatasync'd within {SYNC_INTERVAL_S + 2} s"
        assert threading.get_ident() not in threads, "fdatasync ran on the event loop's thread"
    finally:
        await writer.aclose()
    assert writer.written == 20


async def test_every_second_syncs_what_a_sealed_segment_holds(tmp_path: Path, fsyncs: FsyncLog) -> None:
    writer, directory = writer_for(tmp_path, "every_second")
    for _ in range(5):
        writer.submit(row())
    assert fsyncs.on(directory) == []
    writer.journal.seal()  # what the writer does before inserting a segment into the database
    assert len(fsyncs.on(directory)) == 1
    writer.journal.sync()  # nothing written since: nothing to sync
    assert len(fsyncs.on(directory)) == 1


async def test_always_fsyncs_before_durable_returns(tmp_path: Path, fsyncs: FsyncLog) -> None:
    writer, directory = writer_for(tmp_path, "always")
    writer.start()
    try:
        for n in range(1, 6):
            r = row()
            writer.submit(r)
            assert await writer.durable()
            assert len(fsyncs.on(directory)) >= n  # one group per awaited record here
            assert r["request_id"] in journaled_ids(directory)
    finally:
        await writer.aclose()
