"""Hourly rollups of usage_records: kept on write, read for ranges longer than a few hours.

The usage writer inserts raw rows with RETURNING (so a replayed, already-stored row
is not counted twice) and adds what was inserted to `usage_rollups` in the same
transaction: sums and counts, plus latency and TTFT histograms of the successful
requests. Reading a month is then a SUM over about (hours × keys × models) rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Insert, func, select
from sqlalchemy.orm import Session

from cortex_server.db.models import HISTOGRAM_BUCKETS, UsageRecord, usage_rollups
from cortex_server.services.usage.histogram import bucket_of
from cortex_server.services.usage.raw import Acc, truncate

KEY = ("hour", "org_id", "user_id", "api_key_id", "model")
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


def rollup_rows(rows: Iterable[Mapping[str, Any] | Any]) -> list[dict[str, Any]]:
    """Aggregate raw usage rows (mappings or RETURNING rows) into rollup rows."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        m = r if isinstance(r, Mapping) else r._mapping
        when: datetime = m["created_at"]
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        key = (when.replace(minute=0, second=0, microsecond=0), m["org_id"] or 0, m["user_id"] or 0,
               m["api_key_id"] or 0, m["model"])  # fmt: skip
        a = acc.get(key)
        if a is None:
            a = acc[key] = {**dict(zip(KEY, key, strict=True)), **dict.fromkeys(MEASURES, 0)}
        status, lat, ct = m["status_code"], float(m["latency_ms"]), m["completion_tokens"]
        a["requests"] += 1
        a["prompt_tokens"] += m["prompt_tokens"]
        a["completion_tokens"] += ct
        a["latency_ms_sum"] += lat
        if status < 400:
            a["ok"] += 1
            a[LAT[bucket_of(lat)]] += 1
            if m["ttft_ms"] is not None:
                a[TTFT[bucket_of(float(m["ttft_ms"]))]] += 1
            if ct > 0:
                a["gen_tokens"] += ct
                a["gen_ms"] += lat
        elif status == 499:
            a["cancelled"] += 1
        elif status < 500:
            a["errors_4xx"] += 1
        else:
            a["errors_5xx"] += 1
    return list(acc.values())


def upsert_statement(dialect: str) -> Insert | None:
    """INSERT … ON CONFLICT (key) DO UPDATE SET measure = measure + excluded.measure."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    else:
        return None
    stmt = dialect_insert(usage_rollups)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY),
        set_={name: usage_rollups.c[name] + stmt.excluded[name] for name in MEASURES},
    )


def add(conn: Connection, inserted: Iterable[Any], stmt: Insert) -> None:
    rows = rollup_rows(inserted)
    if rows:
        conn.execute(stmt, rows)


def read(
    session: Session, *, group_by: str, bucket: str, org_id: int | None, since: datetime, until: datetime
) -> dict[tuple[Any, str | None], Acc]:
    """Sum the rollups of the whole hours in [since, until) (both on the hour)."""
    r = usage_rollups.c
    group = r[GROUPS[group_by]]
    cols = [group.label("grp"), *(func.sum(r[name]).label(name) for name in MEASURES)]
    stmt = select(*cols).where(r.hour >= since, r.hour < until)
    if org_id is not None:
        stmt = stmt.where(r.org_id == org_id)
    if bucket == "none":
        stmt = stmt.group_by(group)
    elif bucket == "day" and session.get_bind().dialect.name == "postgresql":
        day = func.date_trunc("day", r.hour, "UTC")
        stmt = stmt.add_columns(day.label("hour")).group_by(group, day)
    else:  # hours (folded into days here where the database cannot truncate)
        stmt = stmt.add_columns(r.hour).group_by(group, r.hour)
    out: dict[tuple[Any, str | None], Acc] = {}
    for row in session.execute(stmt):
        m = row._mapping
        grp = m["grp"]
        if group_by != "model" and grp == 0:
            grp = None
        hour = m["hour"] if bucket != "none" else None
        if isinstance(hour, str):
            hour = datetime.fromisoformat(hour)
        key = (grp, truncate(hour, bucket) if hour is not None else None)
        a = out.get(key)
        if a is None:
            a = out[key] = Acc()
            a.lat_h, a.ttft_h = [0] * HISTOGRAM_BUCKETS, [0] * HISTOGRAM_BUCKETS
        merge_sums(a, m)
    return out


def merge_sums(a: Acc, m: Mapping[str, Any]) -> None:
    a.n += int(m["requests"] or 0)
    a.ok += int(m["ok"] or 0)
    a.e4 += int(m["errors_4xx"] or 0)
    a.e5 += int(m["errors_5xx"] or 0)
    a.cancelled += int(m["cancelled"] or 0)
    a.pt += int(m["prompt_tokens"] or 0)
    a.ct += int(m["completion_tokens"] or 0)
    a.gen_t += int(m["gen_tokens"] or 0)
    a.lat_sum += float(m["latency_ms_sum"] or 0.0)
    a.gen_ms += float(m["gen_ms"] or 0.0)
    assert a.lat_h is not None and a.ttft_h is not None
    for i in range(HISTOGRAM_BUCKETS):
        a.lat_h[i] += int(m[LAT[i]] or 0)
        a.ttft_h[i] += int(m[TTFT[i]] or 0)


def insert_returning(table_insert: Insert, dialect: str) -> Insert:
    """The writer's raw insert, returning what rollups need (where the dialect can)."""
    if dialect in ("postgresql", "sqlite"):
        return table_insert.returning(*RETURNED)
    return table_insert
