from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from cortex_server.db.engine import make_engine
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.db.models import UsageRecord
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.metering.writer import UsageWriter


def row(**kw: Any) -> dict[str, Any]:
    base = {
        "request_id": uuid.uuid4().hex,
        "created_at": datetime.now(UTC),
        "org_id": 1,
        "user_id": None,
        "api_key_id": 3,
        "model": "m",
        "replica": "m/0",
        "endpoint": "chat.completions",
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "latency_ms": 1.5,
        "ttft_ms": None,
        "status_code": 200,
        "streamed": False,
        "cancelled": False,
    }
    return {**base, **kw}


def count(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(UsageRecord)))


async def test_batches_are_bulk_inserted(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to_head(engine)
    writer = UsageWriter(engine=engine, spool=UsageSpool(tmp_path / "spool" / "usage.jsonl"), batch_max=50)
    for _ in range(120):
        writer.submit(row())
    await writer.flush()
    assert count(engine) == 120 and writer.written == 120


def journal_lines(directory: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in directory.glob("usage-*.jsonl"))


async def test_db_outage_keeps_the_journal_then_replays_without_duplicates(tmp_path: Path) -> None:
    db_dir = tmp_path / "dbdir"
    url = f"sqlite:///{db_dir / 'db.sqlite'}"
    spool_path = tmp_path / "spool" / "usage.jsonl"
    journal_dir = tmp_path / "spool" / "journal"
    engine = create_engine(url)  # the directory does not exist: every connect fails
    writer = UsageWriter(engine=engine, spool=UsageSpool(spool_path))
    rows = [row(ttft_ms=3.0, streamed=True) for _ in range(10)]
    for r in rows[:6]:
        writer.submit(r)
    assert await writer.durable()
    await writer.flush()
    assert journal_lines(journal_dir) == 6 and not writer.db_ok

    db_dir.mkdir()
    upgrade_to_head(make_engine(url))  # the database is back
    writer.submit(rows[6])
    await writer.flush()
    assert count(engine) == 7 and writer.db_ok and journal_lines(journal_dir) == 0

    # a replay cut short earlier (rows already stored) is harmless: request ids are unique
    UsageSpool(spool_path).append([rows[0], rows[1], *rows[7:]])
    await writer.aclose()
    assert count(engine) == 10
    with engine.connect() as conn:
        stored = conn.execute(
            select(UsageRecord).where(UsageRecord.request_id == rows[0]["request_id"])
        ).one()
    assert stored.ttft_ms == 3.0 and stored.streamed is True
    shutil.rmtree(db_dir)


async def test_close_leaves_in_the_journal_what_the_db_did_not_take(tmp_path: Path) -> None:
    spool_path = tmp_path / "usage.jsonl"
    writer = UsageWriter(
        engine=create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"), spool=UsageSpool(spool_path)
    )
    writer.start()
    writer.submit(row())
    writer.submit(row())
    await writer.aclose()
    assert journal_lines(tmp_path / "journal") == 2
