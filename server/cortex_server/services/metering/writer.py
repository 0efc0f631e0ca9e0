"""The usage writer: records go to the journal (durable), and from the journal into the database.

`submit(row)` hands a record to the journal (journal.py: written at once and fsync'd within
a second, or queued for the next group commit and fsync'd); `durable()` waits until the
record is as durable as the `usage_journal_fsync` setting promises (the gateway awaits it
before a response ends). A task commits queued records as they come (or fsyncs once a
second), and every `flush_interval_s` seals the journal's segment
and bulk-inserts the sealed segments into the database (in a worker thread, so a slow
or dead database never blocks the event loop). A segment is deleted only once its
records are in the database, so a DB outage just leaves segments on disk, and a crash
leaves them for the next start. The old spool file (before the journal) is replayed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import Engine, Insert, insert
from sqlalchemy.exc import SQLAlchemyError

from cortex_server.db.models import UsageRecord
from cortex_server.services.metering.bulk_insert import UsageBulkInsert
from cortex_server.services.metering.journal import UsageJournal
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.usage import rollups

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 2.0
SYNC_INTERVAL_S = 1.0  # usage_journal_fsync = "every_second"


class UsageWriter:
    def __init__(
        self,
        *,
        engine: Engine,
        spool: UsageSpool,
        journal: UsageJournal | None = None,
        flush_interval_s: float = 0.5,
        batch_max: int = 1000,
        refuse_when_not_durable: bool = True,
    ) -> None:
        self._engine = engine
        self._spool = spool
        # default: next to the spool, 256 MiB
        self.journal = journal or UsageJournal(spool.path.parent / "journal", max_bytes=256 << 20)
        self.refuse_when_not_durable = refuse_when_not_durable
        self._interval = flush_interval_s
        self._batch_max = batch_max
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._last_group: asyncio.Future[bool] | None = None
        self._failures = 0
        self._closing = False
        self._insert_stmt = _insert_ignoring_duplicates(engine)
        # rows actually inserted (not duplicates from a replay) also go into the hourly rollups
        self._rollup_stmts = rollups.upsert_statements(engine)
        self._returning_stmt = rollups.insert_returning(self._insert_stmt, engine.dialect.name)
        self._bulk = (
            None
            if self._rollup_stmts is None
            else UsageBulkInsert(engine, self._insert_stmt, self._rollup_stmts)
        )
        self.written = 0  # rows that reached the DB (tests, metrics)
        self.spooled = 0

    def submit(self, row: dict[str, Any]) -> None:
        """Hand over one record (never raises); `durable()` waits until it is durable."""
        if not self.journal.fsync_each_group:
            self.journal.append(row)  # written now: durable against any death of the daemon
            return
        self._last_group = self.journal.enqueue(row)
        self._kick.set()

    async def durable(self) -> bool:
        """Until every record submitted so far is on disk (False: the journal could not take it)."""
        group = self._last_group
        if group is None:
            return True
        if self._committer is None:  # no committer task (tests driving the writer by hand)
            await self.journal.commit()
        return await asyncio.shield(group)

    def refusal(self) -> str | None:
        """Why new inference is refused now (policy 'refuse' while nothing durable can be written)."""
        if self.refuse_when_not_durable and self.journal.error is not None:
            return self.journal.error
        return None

    @property
    def pending(self) -> int:
        """Records handed over and not yet in the database (queued for the journal or held in memory)."""
        return self.journal.queued + self.journal.unjournaled_pending

    @property
    def spool_dropped(self) -> int:
        return self._spool.dropped + self.journal.unreadable

    @property
    def db_ok(self) -> bool:
        return self._failures == 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-writer")
        loop = self._commit_loop() if self.journal.fsync_each_group else self._sync_loop()
        self._committer = asyncio.create_task(loop, name="usage-journal")

    async def _sync_loop(self) -> None:
        """For "every_second": fdatasync what was written, once a second (off the loop)."""
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_INTERVAL_S):
                    await self._kick.wait()  # set only to stop
            try:
                await asyncio.to_thread(self.journal.sync)
            except Exception:  # the syncer must outlive any bug in one sync
                log.exception("usage journal sync failed")

    async def _commit_loop(self) -> None:
        while not self._closing:
            await self._kick.wait()
            self._kick.clear()
            try:
                while self.journal.queued:
                    await self.journal.commit()
            except Exception:  # the committer must outlive any bug in one commit
                log.exception("usage journal commit failed")

    async def aclose(self) -> None:
        # No task.cancel(): a cancel racing the wake-up can be swallowed (wait_for in 3.11)
        # and would also interrupt a flush halfway. Ask the loop to stop, then wait for it.
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._committer is not None:
            self._kick.set()
            await self._committer
            self._committer = None
        self._failures = 0  # one last try at the DB; whatever fails is spooled
        await self.flush()

    async def _run(self) -> None:
        while not self._closing:
            delay = (
                self._interval
                if self._failures == 0
                else min(MAX_BACKOFF_S, self._interval * 2**self._failures)
            )
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._closing:
                return
            try:
                await self.flush()
            except Exception:  # the writer must outlive any bug in one flush
                log.exception("usage flush failed")

    async def flush(self) -> None:
        async with self._lock:
            await self.journal.commit()  # what is queued goes to disk first
            held = self.journal.take_unjournaled()
            try:
                await asyncio.to_thread(self._write, held)
            finally:
                if held:
                    self.journal.give_back(held)  # _write empties it once they are in

    def _write(self, held: list[dict[str, Any]]) -> None:
        """Blocking: runs in a worker thread. `held`: records the journal could not take."""
        self.journal.recheck()
        try:
            if self._spool.pending():
                replayed = self._spool.replay(self._insert, batch=self._batch_max)
                if replayed:
                    log.info("replayed %s spooled usage records into the database", replayed)
            for seg in self.journal.seal():
                rows = self.journal.rows_of(seg)
                for i in range(0, len(rows), self._batch_max):
                    self._insert(rows[i : i + self._batch_max])  # a replay twice is deduplicated
                self.journal.done(seg)
            for i in range(0, len(held), self._batch_max):
                self._insert(held[i : i + self._batch_max])
            held.clear()
        except (SQLAlchemyError, OSError) as exc:
            if self._failures == 0:
                log.warning(
                    "usage database unreachable, records wait in the journal %s: %s",
                    self.journal.directory,
                    _first_line(exc),
                )
            self._failures += 1
            return
        if self._failures:
            log.info("usage database reachable again")
        self._failures = 0

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._bulk is None or not self._bulk.insert_if_all_new(rows):
            # some were stored already (a replay): RETURNING says which are new, to roll up only those
            with self._engine.begin() as conn:
                if self._rollup_stmts is None:
                    conn.execute(self._insert_stmt, rows)
                else:
                    inserted = conn.execute(self._returning_stmt, rows).all()
                    rollups.add(conn, inserted, self._rollup_stmts)
        self.written += len(rows)


def _insert_ignoring_duplicates(engine: Engine) -> Insert:
    table = UsageRecord
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=["request_id"])
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=["request_id"])
    return insert(table)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
