"""Requests refused before an engine (401/403/429), counted per minute and written in batches.

A refused request costs a dict increment on the event loop; a background task
appends one row per distinct (minute, org, key, user, route, status, reason) every
few seconds. Memory is bounded: past `max_keys` distinct keys, new ones fold into
an org-less "overflow" key per (route, status), and what cannot be kept (the DB
down for long, the overflow table full too) is counted as dropped, never queued
without bound. A flood of bad keys (401, no principal) is a single key per minute.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError

from cortex_server.db.models import UsageRejection

log = logging.getLogger(__name__)


class RejectionKey(NamedTuple):
    bucket_start: datetime
    org_id: int | None
    api_key_id: int | None
    user_id: int | None
    route: str
    status_code: int
    reason: str


def route_class(path: str) -> str:
    if path.startswith("/v1/"):
        return "inference"
    if path.startswith("/admin/"):
        return "admin"
    return "other"


class RejectionRecorder:
    def __init__(self, *, engine: Engine, max_keys: int = 10_000, flush_interval_s: float = 5.0) -> None:
        self._engine = engine
        self._max_keys = max_keys
        self._interval = flush_interval_s
        self._counts: dict[RejectionKey, int] = {}
        self.dropped = 0  # rejections that could not be kept (bounded memory)
        self.written = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def record(
        self,
        *,
        path: str,
        status_code: int,
        reason: str | None,
        org_id: int | None = None,
        api_key_id: int | None = None,
        user_id: int | None = None,
        now: datetime | None = None,
    ) -> None:
        minute = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
        key = RejectionKey(
            minute, org_id, api_key_id, user_id, route_class(path), status_code, (reason or "unknown")[:64]
        )
        self._add(key, 1)

    def _add(self, key: RejectionKey, n: int) -> None:
        counts = self._counts
        if key in counts:
            counts[key] += n
            return
        if len(counts) >= self._max_keys:
            key = key._replace(org_id=None, api_key_id=None, user_id=None, reason="overflow")
            if key not in counts and len(counts) >= self._max_keys + 1000:
                self.dropped += n
                return
        counts[key] = counts.get(key, 0) + n

    @property
    def pending(self) -> int:
        return len(self._counts)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rejection-counts")

    async def aclose(self) -> None:
        self._closing.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=self._interval)
            except TimeoutError:
                pass
            if not self._closing.is_set():
                await self.flush()

    async def flush(self) -> None:
        batch, self._counts = self._counts, {}
        if not batch:
            return
        try:
            await asyncio.to_thread(self._write, batch)
        except SQLAlchemyError as exc:
            log.warning("cannot record %s rejection counts yet: %s", len(batch), type(exc).__name__)
            for key, n in batch.items():  # keep them for the next try, within the same bound
                self._add(key, n)

    def _write(self, batch: dict[RejectionKey, int]) -> None:
        rows = [{**key._asdict(), "count": n} for key, n in batch.items()]
        with self._engine.begin() as conn:
            conn.execute(insert(UsageRejection), rows)
        self.written += len(rows)
