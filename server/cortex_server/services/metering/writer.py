"""The async batch writer: requests hand over records without waiting; a task bulk-inserts them.

DB work runs in a worker thread, so a slow or dead database never blocks the event
loop. When an insert fails the batch goes to the spool (append-only file) and is
replayed once the database answers again. `aclose()` flushes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, Insert, insert
from sqlalchemy.exc import SQLAlchemyError

from cortex_server.db.models import UsageRecord
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.usage import rollups

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 2.0


class UsageWriter:
    def __init__(
        self, *, engine: Engine, spool: UsageSpool, flush_interval_s: float = 0.5, batch_max: int = 1000
    ) -> None:
        self._engine = engine
        self._spool = spool
        self._interval = flush_interval_s
        self._batch_max = batch_max
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._closing = False
        self._insert_stmt = _insert_ignoring_duplicates(engine)
        # rows actually inserted (not duplicates from a replay) also go into the hourly rollups
        self._rollup_stmts = rollups.upsert_statements(engine.dialect.name)
        self._returning_stmt = rollups.insert_returning(self._insert_stmt, engine.dialect.name)
        self.written = 0  # rows that reached the DB (tests, metrics)
        self.spooled = 0

    def submit(self, row: dict[str, Any]) -> None:
        """Hand over one record (never blocks, never raises)."""
        self._pending.append(row)
        if len(self._pending) >= self._batch_max:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Records handed over and not yet written (or spooled)."""
        return len(self._pending)

    @property
    def spool_dropped(self) -> int:
        return self._spool.dropped

    @property
    def db_ok(self) -> bool:
        return self._failures == 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def aclose(self) -> None:
        # No task.cancel(): a cancel racing the wake-up can be swallowed (wait_for in 3.11)
        # and would also interrupt a flush halfway. Ask the loop to stop, then wait for it.
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
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
            batch, self._pending = self._pending, []
            if batch or self._spool.pending():
                await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        """Blocking: runs in a worker thread."""
        try:
            if self._spool.pending():
                replayed = self._spool.replay(self._insert, batch=self._batch_max)
                if replayed:
                    log.info("replayed %s spooled usage records into the database", replayed)
            for i in range(0, len(batch), self._batch_max):
                self._insert(batch[i : i + self._batch_max])  # a partial batch re-spooled is deduplicated
        except (SQLAlchemyError, OSError) as exc:
            if self._failures == 0:
                log.warning(
                    "usage database unreachable, spooling to %s: %s", self._spool.path, _first_line(exc)
                )
            self._failures += 1
            if batch:
                self._spool.append(batch)
                self.spooled += len(batch)
            return
        if self._failures:
            log.info("usage database reachable again")
        self._failures = 0

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
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
