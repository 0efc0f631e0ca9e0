"""Usage analytics against the raw rows they come from, on SQLite and PostgreSQL.

Rows go in through the real usage writer (so the hourly rollups are the writer's);
the oracle is computed here from the generated rows: plain sums, and percentiles
from the `statistics` module (method="inclusive" is percentile_cont's interpolation).
Short windows must match exactly; long ones (rollups + raw edges) must match sums
exactly and put each percentile within one histogram bucket of the exact value.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cortex_server.db.engine import make_engine
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.metering.writer import UsageWriter
from cortex_server.services.observability.rejections import RejectionRecorder
from cortex_server.services.usage.histogram import bucket_of
from cortex_server.services.usage.report import UsageQuery, report, segments

NOW = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)
KEYS = {k: {"org_id": 1 + k % 2, "user_id": 10 + k % 3} for k in range(1, 7)}  # key → its org and user
MODELS = ("alpha", "beta", "gamma")
GROUP_FIELD = {"model": "model", "key": "api_key_id", "user": "user_id", "org": "org_id"}


def generated_rows(n: int, *, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        key = rng.choice(list(KEYS))
        status = rng.choices([200, 400, 404, 499, 502, 504], weights=[85, 4, 2, 3, 3, 3])[0]
        streamed = rng.random() < 0.6
        rows.append(
            {
                "request_id": f"gen-{seed}-{i}",
                "created_at": NOW - timedelta(seconds=rng.uniform(0, 3 * 86400)),
                "org_id": KEYS[key]["org_id"],
                "user_id": KEYS[key]["user_id"],
                "api_key_id": key,
                "model": rng.choice(MODELS),
                "replica": "r/0",
                "endpoint": "chat.completions",
                "prompt_tokens": rng.randint(1, 500),
                "completion_tokens": rng.choice([0, rng.randint(1, 300)]),
                "latency_ms": rng.lognormvariate(6, 1.5),
                "ttft_ms": rng.lognormvariate(4, 1) if streamed else None,
                "status_code": status,
                "streamed": streamed,
                "cancelled": status == 499,
            }
        )
    return rows


def write_through_the_writer(engine: Engine, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    async def run() -> None:
        writer = UsageWriter(engine=engine, spool=UsageSpool(tmp_path / "spool.jsonl"), batch_max=500)
        for row in rows:
            writer.submit(dict(row))
        await writer.flush()
        assert writer.written == len(rows) and writer.spooled == 0

    asyncio.run(run())


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade_to_head(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> list[dict[str, Any]]:
    rows = generated_rows(2500, seed=7)
    write_through_the_writer(engine, tmp_path, rows)
    write_through_the_writer(engine, tmp_path, rows[:300])  # a replay: stored ids are not counted twice
    return rows


def oracle(
    rows: list[dict[str, Any]], *, group_by: str, bucket: str, org_id: int | None, since: datetime | None,
    until: datetime,
) -> dict[tuple[Any, str | None], dict[str, Any]]:  # fmt: skip
    step = {"none": None, "hour": 3600, "day": 86400, "minute": 60}[bucket]
    groups: dict[tuple[Any, str | None], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if org_id is not None and r["org_id"] != org_id:
            continue
        if (since is not None and r["created_at"] < since) or r["created_at"] >= until:
            continue
        b = None
        if step:
            start = int(r["created_at"].timestamp()) // step * step
            b = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        groups[(r[GROUP_FIELD[group_by]], b)].append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r["status_code"] < 400]
        made = [r for r in ok if r["completion_tokens"] > 0]
        out[key] = {
            "requests": len(rs),
            "ok": len(ok),
            "errors_4xx": sum(1 for r in rs if 400 <= r["status_code"] < 500 and r["status_code"] != 499),
            "errors_5xx": sum(1 for r in rs if r["status_code"] >= 500),
            "cancelled": sum(1 for r in rs if r["status_code"] == 499),
            "prompt_tokens": sum(r["prompt_tokens"] for r in rs),
            "completion_tokens": sum(r["completion_tokens"] for r in rs),
            "latency": [r["latency_ms"] for r in ok],
            "ttft": [r["ttft_ms"] for r in ok if r["ttft_ms"] is not None],
            "tokens_per_s": (
                sum(r["completion_tokens"] for r in made) / (sum(r["latency_ms"] for r in made) / 1000)
                if made
                else None
            ),
        }
    return out


def quantile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p * 100) - 1]


def order_statistics(values: list[float], p: float) -> tuple[float, float]:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p
    return ordered[math.floor(rank)], ordered[math.ceil(rank)]


PCTS = (
    ("latency_p50_ms", "latency", 0.5), ("latency_p95_ms", "latency", 0.95),
    ("latency_p99_ms", "latency", 0.99), ("ttft_p50_ms", "ttft", 0.5), ("ttft_p95_ms", "ttft", 0.95),
)  # fmt: skip

CASES = [
    # (group_by, bucket, org, window): ≤ 6 h is the exact path, longer the rollup path
    ("model", "none", 1, timedelta(hours=2)),
    ("key", "minute", None, timedelta(hours=1)),
    ("user", "hour", 2, timedelta(hours=5, minutes=30)),
    ("model", "none", 1, timedelta(hours=30, minutes=17)),
    ("org", "hour", None, timedelta(hours=27, minutes=5)),
    ("key", "day", None, None),
    ("model", "day", 2, timedelta(days=2, hours=3)),
]


def test_report_matches_the_raw_rows(engine: Engine, seeded: list[dict[str, Any]]) -> None:
    for group_by, bucket, org_id, window in CASES:
        check_case(engine, seeded, group_by, bucket, org_id, window)


def check_case(
    engine: Engine, seeded: list[dict[str, Any]], group_by: str, bucket: str, org_id: int | None,
    window: timedelta | None,
) -> None:  # fmt: skip
    since = NOW - window if window is not None else None
    query = UsageQuery(org_id=org_id, group_by=group_by, bucket=bucket, since=since)  # type: ignore[arg-type]
    with Session(engine) as session:
        got = report(session, query, now=NOW)
    want = oracle(seeded, group_by=group_by, bucket=bucket, org_id=org_id, since=since, until=NOW)
    assert {(r[group_by], r.get("bucket")) for r in got} == set(want)
    exact = window is not None and window <= timedelta(hours=6)
    for row in got:
        w = want[(row[group_by], row.get("bucket"))]
        assert row["percentiles"] == ("exact" if exact else "histogram")
        for name in (
            "requests",
            "ok",
            "errors_4xx",
            "errors_5xx",
            "cancelled",
            "prompt_tokens",
            "completion_tokens",
        ):
            assert row[name] == w[name], (name, row)
        assert row["errors"] == w["errors_4xx"] + w["errors_5xx"]
        assert row["total_tokens"] == w["prompt_tokens"] + w["completion_tokens"]
        if w["tokens_per_s"] is None:
            assert row["tokens_per_s"] is None
        else:
            assert row["tokens_per_s"] == pytest.approx(w["tokens_per_s"], rel=1e-3)
        for field, measure, p in PCTS:
            expected = quantile(w[measure], p)
            if expected is None:
                assert row[field] is None
            elif exact:
                assert row[field] == pytest.approx(expected, rel=1e-6, abs=1e-3), field
            else:  # between the buckets of the two order statistics the exact value interpolates between
                low, high = order_statistics(w[measure], p)
                assert bucket_of(low) <= bucket_of(row[field]) <= bucket_of(high), (
                    field,
                    row[field],
                    expected,
                )


def test_rejections_are_counted_per_group_and_org_filtered(engine: Engine) -> None:
    recorder = RejectionRecorder(engine=engine)
    at = NOW - timedelta(minutes=30)
    for _ in range(5):
        recorder.record(path="/v1/chat/completions", status_code=401, reason="invalid_api_key", now=at)
    for _ in range(3):
        recorder.record(path="/v1/chat/completions", status_code=429, reason="rate_limit_exceeded",
                        org_id=1, api_key_id=3, user_id=10, now=at)  # fmt: skip
    recorder.record(path="/v1/chat/completions", status_code=403, reason="model_not_allowed",
                    org_id=2, api_key_id=4, user_id=11, now=at)  # fmt: skip
    assert recorder.pending == 3  # 9 rejections, 3 distinct keys
    asyncio.run(recorder.flush())
    with Session(engine) as session:
        org1 = report(session, UsageQuery(org_id=1, group_by="key", since=NOW - timedelta(hours=1)), now=NOW)
        every = report(
            session, UsageQuery(org_id=None, group_by="org", since=NOW - timedelta(hours=1)), now=NOW
        )
    assert [(r["key"], r["rejected_429"], r["rejected"], r["requests"]) for r in org1] == [(3, 3, 3, 0)]
    by_org = {r["org"]: (r["rejected_401"], r["rejected_403"], r["rejected_429"]) for r in every}
    assert by_org == {None: (5, 0, 0), 1: (0, 0, 3), 2: (0, 1, 0)}


def test_a_flood_of_distinct_rejections_stays_bounded(engine: Engine) -> None:
    recorder = RejectionRecorder(engine=engine, max_keys=50)
    for key_id in range(5000):
        recorder.record(
            path="/v1/x", status_code=403, reason="model_not_allowed", org_id=1, api_key_id=key_id, now=NOW
        )
    assert recorder.pending <= 51
    asyncio.run(recorder.flush())
    assert recorder.dropped == 0
    with Session(engine) as session:
        rows = report(session, UsageQuery(org_id=None, group_by="org", since=NOW - timedelta(hours=1)),
                      now=NOW + timedelta(minutes=1))  # fmt: skip
    # the first 50 keys are kept as they came; the rest fold into one org-less overflow count
    assert {r["org"]: r["rejected_403"] for r in rows} == {1: 50, None: 4950}


def test_segments_cover_the_window_exactly_with_aligned_rollups() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        since = NOW - timedelta(seconds=rng.uniform(0, 10 * 86400))
        until = since + timedelta(seconds=rng.choice([rng.uniform(0, 7200), rng.uniform(0, 5 * 86400)]))
        for days in (True, False):
            parts = segments(since, until, days=days)
            if since == until:
                assert parts == []
                continue
            assert parts[0][1] == since and parts[-1][2] == until
            for (_, _, end), (_, start, _) in zip(parts, parts[1:], strict=False):
                assert end == start  # contiguous, no overlap
            for source, lo, hi in parts:
                assert lo < hi
                step = {"daily": 86400, "hourly": 3600}.get(source)
                if step:
                    assert lo.timestamp() % step == 0 and hi.timestamp() % step == 0, (source, lo, hi)
                else:
                    assert hi - lo < timedelta(hours=1) or source == "raw" and hi - lo < timedelta(hours=2)
            assert days or all(source != "daily" for source, _, _ in parts)


def test_the_migration_rolls_up_rows_stored_before_it(database_url: str, tmp_path: Path) -> None:
    """Rows written before 0003 (no rollups yet) are backfilled; long windows then match them."""
    from alembic import command
    from sqlalchemy import insert

    from cortex_server.db.migrate import alembic_config
    from cortex_server.db.models import UsageRecord

    eng = make_engine(database_url)
    try:
        command.upgrade(alembic_config(eng), "0002_access")
        rows = generated_rows(600, seed=5)
        with eng.begin() as conn:  # as the 0002-era writer did: raw rows only
            conn.execute(insert(UsageRecord.__table__), rows)
        upgrade_to_head(eng)
        check_case(eng, rows, "model", "day", None, None)
        check_case(eng, rows, "key", "hour", 1, timedelta(hours=40, minutes=3))
        command.downgrade(alembic_config(eng), "0002_access")  # and back, cleanly
        command.upgrade(alembic_config(eng), "head")
    finally:
        eng.dispose()


def test_histogram_percentiles_land_between_the_buckets_of_the_exact_order_statistics() -> None:
    from cortex_server.services.usage.histogram import histogram, percentiles

    rng = random.Random(3)
    for _ in range(500):
        values = [
            rng.lognormvariate(rng.uniform(0, 9), rng.uniform(0.1, 3)) for _ in range(rng.randint(1, 400))
        ]
        ps = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)
        for p, est in zip(ps, percentiles(histogram(values), ps), strict=True):
            assert est is not None
            low, high = order_statistics(values, p)
            assert bucket_of(low) <= bucket_of(est) <= bucket_of(high), (p, est, low, high)
    assert percentiles([0] * 45, (0.5,)) == [None]


def test_rejection_counts_wait_for_an_unreachable_database(tmp_path: Path) -> None:
    from tests.conftest import free_port

    dead = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2")
    recorder = RejectionRecorder(engine=dead)
    for _ in range(3):
        recorder.record(path="/v1/x", status_code=401, reason="invalid_api_key", now=NOW)
    asyncio.run(recorder.flush())  # fails: the counts stay, merged, within the bound
    assert recorder.pending == 1 and recorder.dropped == 0 and recorder.written == 0
    assert list(recorder._counts.values()) == [3]
    dead.dispose()


def stored_rows(engine: Engine, request_ids: list[str]) -> list[tuple[Any, ...]]:
    """Every column but the ids, in `request_ids` order, as the database holds them (plain SQL, so
    SQLite's stored text is compared as text, not as what SQLAlchemy would parse out of it)."""
    from sqlalchemy import text

    from cortex_server.db.models import UsageRecord

    columns = ", ".join(c.key for c in UsageRecord.__table__.columns if c.key not in ("id", "request_id"))
    with engine.connect() as conn:
        found = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                text(f"SELECT request_id, {columns} FROM usage_records WHERE request_id LIKE 'gen-%'")
            )
        }
    return [found[i] for i in request_ids]


def test_the_bulk_insert_stores_what_the_orm_insert_stores(engine: Engine, tmp_path: Path) -> None:
    """The writer's executemany path (bulk_insert.py) against SQLAlchemy's own insert of the same
    rows: every column reads back equal (datetimes, booleans, NULLs, floats), on both databases."""
    rows = generated_rows(1100, seed=11)  # on SQLite: three multi-row statements (driver_sql.py)
    for r in rows[::7]:
        r["user_id"], r["replica"], r["api_key_id"] = None, None, None
    twins = [{**r, "request_id": r["request_id"] + "-orm"} for r in rows]
    writer = UsageWriter(engine=engine, spool=UsageSpool(tmp_path / "spool.jsonl"))
    assert writer._bulk is not None and writer._bulk.insert_if_all_new([dict(r) for r in rows])
    writer._bulk = None  # the same rows again, the way SQLAlchemy inserts them
    writer._insert([dict(r) for r in twins])
    assert stored_rows(engine, [r["request_id"] for r in rows]) == stored_rows(
        engine, [r["request_id"] for r in twins]
    )


def test_sqlite_batches_go_as_multi_row_statements(engine: Engine, tmp_path: Path) -> None:
    """sqlite3 hands the GIL back around every row of an executemany; with the event loop's thread
    busy each hand-back waited for the switch interval, and the writer fell behind without bound.
    On SQLite a batch (and its rollups) goes as a few multi-row statements; PostgreSQL keeps
    psycopg's pipelined executemany (db/driver_sql.py says why)."""
    from sqlalchemy import event

    seen: list[tuple[str, bool, int]] = []  # (table, executemany?, parameters bound)

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("INSERT"):
            seen.append((statement.split()[2], many, len(params)))

    event.listen(engine, "before_cursor_execute", note)
    writer = UsageWriter(engine=engine, spool=UsageSpool(tmp_path / "spool.jsonl"))
    assert writer._bulk is not None
    per = writer._bulk._insert.rows_per_statement
    assert per > 1 and per & (per - 1) == 0  # a power of two
    rows = generated_rows(2 * per + per // 2 + 3, seed=17)
    assert writer._bulk.insert_if_all_new([dict(r) for r in rows])
    inserts = [s for s in seen if s[0] == "usage_records"]
    if engine.dialect.name == "sqlite":
        # full chunks, then the rest as powers of two: few distinct statements for sqlite3's cache
        columns = len(writer._bulk._keys)
        assert inserts == [("usage_records", False, n * columns) for n in [per, per, per // 2, 2, 1]]
        assert all(not many for _table, many, _n in seen), seen
    else:
        assert inserts == [("usage_records", True, len(rows))]
    assert {s[0] for s in seen} == {"usage_records", "usage_rollups_hourly", "usage_rollups_daily"}
    event.remove(engine, "before_cursor_execute", note)
    check_case(engine, rows, "model", "day", None, None)  # the rollups agree with the raw rows


def test_a_replayed_batch_is_rolled_up_only_for_its_new_rows(engine: Engine, tmp_path: Path) -> None:
    """A batch part stored already (a replay after a crash) is refused whole by the bulk path,
    leaving nothing, and the RETURNING path then adds only its new rows to the rollups."""
    rows = generated_rows(900, seed=13)
    write_through_the_writer(engine, tmp_path, rows[:500])
    writer = UsageWriter(engine=engine, spool=UsageSpool(tmp_path / "spool2.jsonl"))
    assert writer._bulk is not None
    mixed = [dict(r) for r in rows[100:900]]  # 400 stored, 400 new: on SQLite two statements
    assert not writer._bulk.insert_if_all_new(mixed)
    assert stored_rows(engine, [r["request_id"] for r in rows[:500]])  # all there
    with pytest.raises(KeyError):  # the refused batch left none of its new rows behind
        stored_rows(engine, [rows[500]["request_id"]])
    writer._insert(mixed)
    from sqlalchemy import func, select

    from cortex_server.db.models import UsageRecord, usage_rollups_daily, usage_rollups_hourly

    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(UsageRecord)) == 900
        for table in (usage_rollups_hourly, usage_rollups_daily):
            assert conn.scalar(select(func.sum(table.c.requests))) == 900
            assert conn.scalar(select(func.sum(table.c.prompt_tokens))) == sum(
                r["prompt_tokens"] for r in rows
            )
    check_case(engine, rows, "model", "day", None, None)
