"""Hourly and daily rollups of usage_records: kept on write, read for long ranges.

The usage writer inserts raw rows with RETURNING (so a replayed, already-stored row
is not counted twice) and adds what was inserted to `usage_rollups_hourly` and
`usage_rollups_daily` in the same transaction: sums and counts, plus latency and TTFT
histograms of the successful requests. A month is then read from about
(30 × keys × models) daily rows plus the hours at its ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, func, select
from sqlalchemy.orm import Session

from cortex_server.db.driver_sql import DriverStatement
from cortex_server.db.models import HISTOGRAM_BUCKETS, UsageRecord, usage_rollups_daily, usage_rollups_hourly
from cortex_server.services.gateway.client_gone import CLIENT_CLOSED_REQUEST
from cortex_server.services.usage.histogram import bucket_of
from cortex_server.services.usage.raw import Acc, truncate

KEY = ("bucket_start", "org_id", "user_id", "api_key_id", "model")
TABLES = {"hourly": usage_rollups_hourly, "daily": usage_rollups_daily}
COUNTS = ("requests", "ok", "errors_4xx", "errors_5xx", "cancelled", "prompt_tokens", "completion_tokens",
          "gen_tokens")  # fmt: skip
SUMS = ("latency_ms_sum", "gen_ms")
LAT = tuple(f"lat_h{i}" for i in range(HISTOGRAM_BUCKETS))
TTFT = tuple(f"ttft_h{i}" for i in range(HISTOGRAM_BUCKETS))
MEASURES = COUNTS + SUMS + LAT + TTFT
# what the writer's INSERT … RETURNING hands back: enough to roll a row up
RETURNED = (
    UsageRecord.created_at, UsageRecord.org_id, UsageRecord.user_id, UsageRecord.api_key_id,
    UsageRecord.model, UsageRecord.status_code, UsageRecord.prompt_tokens, UsageRecord.completion_tokens,
    UsageRecord.latency_ms, UsageRecord.ttft_ms,
)  # fmt: skip
GROUPS = {"model": "model", "key": "api_key_id", "user": "user_id", "org": "org_id"}


# positions in a rollup's measure vector (MEASURES order)
_REQ, _OK, _E4, _E5, _CANCELLED, _PT, _CT, _GEN_T, _LAT_SUM, _GEN_MS = range(len(COUNTS) + len(SUMS))
_LAT0 = len(COUNTS) + len(SUMS)
_TTFT0 = _LAT0 + HISTOGRAM_BUCKETS


def _hourly(rows: Iterable[Mapping[str, Any] | Any]) -> dict[tuple[Any, ...], list[Any]]:
    """Raw rows → {(hour, org, user, key, model): measures in MEASURES order}.

    Lists indexed by position, not dicts keyed by name: the usage writer rolls up every row the
    gateway serves, in its thread, and this loop was half of its CPU per row."""
    acc: dict[tuple[Any, ...], list[Any]] = {}
    width = len(MEASURES)
    for r in rows:
        m = r if isinstance(r, Mapping) else r._mapping
        when: datetime = m["created_at"]
        if when.tzinfo is not UTC:
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        key = (
            when.replace(minute=0, second=0, microsecond=0),
            m["org_id"] or 0,
            m["user_id"] or 0,
            m["api_key_id"] or 0,
            m["model"],
        )
        v = acc.get(key)
        if v is None:
            v = acc[key] = [0] * width
        status, lat, ct = m["status_code"], float(m["latency_ms"]), m["completion_tokens"]
        v[_REQ] += 1
        v[_PT] += m["prompt_tokens"]
        v[_CT] += ct
        v[_LAT_SUM] += lat
        if status < 400:
            v[_OK] += 1
            v[_LAT0 + bucket_of(lat)] += 1
            if (ttft := m["ttft_ms"]) is not None:
                v[_TTFT0 + bucket_of(float(ttft))] += 1
            if ct > 0:
                v[_GEN_T] += ct
                v[_GEN_MS] += lat
        elif status == CLIENT_CLOSED_REQUEST:
            v[_CANCELLED] += 1
        elif status < 500:
            v[_E4] += 1
        else:
            v[_E5] += 1
    return acc


def _to_days(hourly: dict[tuple[Any, ...], list[Any]]) -> dict[tuple[Any, ...], list[Any]]:
    days: dict[tuple[Any, ...], list[Any]] = {}
    for (start, *rest), v in hourly.items():
        key = (start.replace(hour=0), *rest)
        d = days.get(key)
        if d is None:
            days[key] = list(v)
        else:
            days[key] = [a + b for a, b in zip(d, v, strict=True)]
    return days


def upsert_statements(engine: Engine) -> dict[str, DriverStatement] | None:
    """Per grain: INSERT … ON CONFLICT (key) DO UPDATE SET measure = measure + excluded.measure,
    compiled once for the driver (a rollup row has ~100 values: see db/driver_sql.py)."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    else:
        return None
    out: dict[str, DriverStatement] = {}
    for grain, table in TABLES.items():
        stmt = dialect_insert(table)
        upsert = stmt.on_conflict_do_update(
            index_elements=list(KEY), set_={name: table.c[name] + stmt.excluded[name] for name in MEASURES}
        )
        out[grain] = DriverStatement(engine, upsert, [table.c[name] for name in (*KEY, *MEASURES)])
    return out


def add(
    conn: Connection, inserted: Iterable[Mapping[str, Any] | Any], stmts: dict[str, DriverStatement]
) -> None:
    """Add inserted raw rows to the hourly and daily rollups (the days summed from the hours)."""
    hourly = _hourly(inserted)
    if not hourly:
        return
    stmts["hourly"].execute(conn, [(*key, *v) for key, v in hourly.items()])
    stmts["daily"].execute(conn, [(*key, *v) for key, v in _to_days(hourly).items()])


def read(
    session: Session, *, grain: str, group_by: str, bucket: str, org_id: int | None, since: datetime,
    until: datetime, into: dict[tuple[Any, str | None], Acc],
) -> None:  # fmt: skip
    """Add the rollups of the whole hours (days) in [since, until) to `into`."""
    r = TABLES[grain].c
    group = r[GROUPS[group_by]]
    cols = [group.label("grp"), *(func.sum(r[name]).label(name) for name in MEASURES)]
    stmt = select(*cols).where(r.bucket_start >= since, r.bucket_start < until)
    if org_id is not None:
        stmt = stmt.where(r.org_id == org_id)
    if bucket == "none":
        stmt = stmt.group_by(group)
    elif bucket == "day" and grain == "hourly" and session.get_bind().dialect.name == "postgresql":
        day = func.date_trunc("day", r.bucket_start, "UTC")
        stmt = stmt.add_columns(day.label("bucket_start")).group_by(group, day)
    else:  # hours (folded into days here where the database cannot truncate)
        stmt = stmt.add_columns(r.bucket_start).group_by(group, r.bucket_start)
    n_counts, n_sums = len(COUNTS), len(SUMS)
    lat_at = 1 + n_counts + n_sums
    ttft_at = lat_at + HISTOGRAM_BUCKETS
    for row in session.execute(stmt):  # positional: grp, COUNTS, SUMS, LAT, TTFT[, bucket_start]
        grp = row[0]
        if group_by != "model" and grp == 0:
            grp = None
        start = row[-1] if bucket != "none" else None
        if isinstance(start, str):
            start = datetime.fromisoformat(start)
        key = (grp, truncate(start, bucket) if start is not None else None)
        counts = [int(v or 0) for v in row[1 : 1 + n_counts]]
        lat = [int(v or 0) for v in row[lat_at:ttft_at]]
        ttft = [int(v or 0) for v in row[ttft_at : ttft_at + HISTOGRAM_BUCKETS]]
        a = into.get(key)
        if a is None:
            a = into[key] = Acc()
            a.lat_h, a.ttft_h = lat, ttft
        else:
            assert a.lat_h is not None and a.ttft_h is not None
            a.lat_h = [x + y for x, y in zip(a.lat_h, lat, strict=True)]
            a.ttft_h = [x + y for x, y in zip(a.ttft_h, ttft, strict=True)]
        requests, ok, e4, e5, cancelled, pt, ct, gen_t = counts
        a.n += requests
        a.ok += ok
        a.e4 += e4
        a.e5 += e5
        a.cancelled += cancelled
        a.pt += pt
        a.ct += ct
        a.gen_t += gen_t
        a.lat_sum += float(row[1 + n_counts] or 0.0)
        a.gen_ms += float(row[2 + n_counts] or 0.0)


def insert_returning(table_insert: Insert, dialect: str) -> Insert:
    """The writer's raw insert, returning what rollups need (where the dialect can)."""
    if dialect in ("postgresql", "sqlite"):
        return table_insert.returning(*RETURNED)
    return table_insert
