"""Usage analytics from usage_records (+ usage_rejections), for one org or, for operators, all.

Grouped by model, key, user or org, optionally per time bucket (minute/hour/day, UTC):
requests, errors by class, client cancellations, rejections (401/403/429), tokens,
latency p50/p95/p99, TTFT p50/p95 and tokens/s.

Percentiles are exact and interpolated the way PostgreSQL's `percentile_cont` does
(linear between the closest ranks). PostgreSQL computes everything in one query
(one sort per measure: the percentiles come as an array). SQLite has no ordered-set
aggregates, so there the rows are streamed and aggregated here; SQLite is the
single-host default, where months of data stay small.

Latency and TTFT percentiles and tokens/s are over successful requests (status < 400):
a fast 4xx would otherwise make a slow model look quick. tokens/s is completion
tokens over the time spent on the requests that produced them (sum / sum).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Float, Integer, and_, func, select
from sqlalchemy.orm import Session

from cortex_server.db.models import UsageRecord, UsageRejection
from cortexctl.core.errors import InvalidRequest

GroupBy = Literal["model", "key", "user", "org"]
Bucket = Literal["none", "minute", "hour", "day"]

GROUP_COLUMNS = {
    "model": UsageRecord.model,
    "key": UsageRecord.api_key_id,
    "user": UsageRecord.user_id,
    "org": UsageRecord.org_id,
}
REJECTION_COLUMNS = {
    "model": None,  # refused before a model was chosen: reported under model null
    "key": UsageRejection.api_key_id,
    "user": UsageRejection.user_id,
    "org": UsageRejection.org_id,
}
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
REJECTED = (401, 403, 429)
FIELDS = (
    "requests", "ok", "errors", "errors_4xx", "errors_5xx", "cancelled",
    "rejected", "rejected_401", "rejected_403", "rejected_429",
    "prompt_tokens", "completion_tokens", "total_tokens",
    "avg_latency_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "ttft_p50_ms", "ttft_p95_ms", "tokens_per_s",
)  # fmt: skip
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class UsageQuery:
    org_id: int | None  # None: every org (operators only; the route decides)
    group_by: GroupBy = "model"
    bucket: Bucket = "none"
    since: datetime | None = None
    until: datetime | None = None


def parse_time(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time (naive = UTC) or a window back from now: 30m, 24h, 7d, 2w."""
    if value is None or value == "":
        return None
    match = _WINDOW.match(value)
    if match:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{value!r} is neither a time nor a window.",
            fix="Use an ISO time (2026-12-01T00:00:00Z) or a window such as 30m, 24h, 7d.",
            param="since",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def report(session: Session, query: UsageQuery) -> list[dict[str, Any]]:
    if session.get_bind().dialect.name == "postgresql":
        rows = _postgres(session, query)
    else:
        rows = _in_python(session, query)
    _add_rejections(session, query, rows)
    out = [_finish(row, query.group_by) for row in rows.values()]
    out.sort(key=lambda r: (r.get("bucket") or "", _sortable(r[query.group_by])))
    return out


# ---- PostgreSQL: one query ------------------------------------------------------------
def _postgres(session: Session, query: UsageQuery) -> dict[tuple[Any, Any], dict[str, Any]]:
    from sqlalchemy.dialects.postgresql import ARRAY, array

    u = UsageRecord
    group = GROUP_COLUMNS[query.group_by].label("grp")
    bucket = (
        func.date_trunc(query.bucket, u.created_at, "UTC").label("bkt") if query.bucket != "none" else None
    )
    ok = u.status_code < 400
    made_tokens = and_(ok, u.completion_tokens > 0)
    pct3 = array([0.5, 0.95, 0.99])
    pct2 = array([0.5, 0.95])
    columns = [
        group,
        func.count().label("requests"),
        func.count().filter(ok).label("ok"),
        func.count()
        .filter(and_(u.status_code >= 400, u.status_code < 500, u.status_code != 499))
        .label("errors_4xx"),
        func.count().filter(u.status_code >= 500).label("errors_5xx"),
        func.count().filter(u.status_code == 499).label("cancelled"),
        func.coalesce(func.sum(u.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(u.completion_tokens), 0).label("completion_tokens"),
        func.avg(u.latency_ms).label("avg_latency_ms"),
        func.percentile_cont(pct3).within_group(u.latency_ms).filter(ok).label("latency_pct"),
        func.percentile_cont(pct2)
        .within_group(u.ttft_ms)
        .filter(and_(ok, u.ttft_ms.is_not(None)))
        .label("ttft_pct"),
        func.sum(u.completion_tokens).filter(made_tokens).label("gen_tokens"),
        func.sum(u.latency_ms).filter(made_tokens).label("gen_ms"),
    ]
    columns[9].type = ARRAY(Float)
    columns[10].type = ARRAY(Float)
    if bucket is not None:
        columns.append(bucket)
    stmt = select(*columns).where(*_record_filters(query))
    stmt = stmt.group_by(group, bucket) if bucket is not None else stmt.group_by(group)
    rows: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in session.execute(stmt):
        b = _iso(r.bkt) if bucket is not None else None
        lat = r.latency_pct or [None, None, None]
        ttft = r.ttft_pct or [None, None]
        rows[(r.grp, b)] = {
            "group": r.grp,
            "bucket": b,
            "requests": r.requests,
            "ok": r.ok,
            "errors_4xx": r.errors_4xx,
            "errors_5xx": r.errors_5xx,
            "cancelled": r.cancelled,
            "prompt_tokens": int(r.prompt_tokens),
            "completion_tokens": int(r.completion_tokens),
            "avg_latency_ms": float(r.avg_latency_ms or 0.0),
            "latency_p50_ms": lat[0],
            "latency_p95_ms": lat[1],
            "latency_p99_ms": lat[2],
            "ttft_p50_ms": ttft[0],
            "ttft_p95_ms": ttft[1],
            "gen_tokens": int(r.gen_tokens or 0),
            "gen_ms": float(r.gen_ms or 0.0),
        }
    return rows


# ---- SQLite (and anything else): stream the rows, aggregate here ------------------------
class _Acc:
    __slots__ = ("n", "ok", "e4", "e5", "cancelled", "pt", "ct", "lat_sum", "lat", "ttft", "gen_t", "gen_ms")

    def __init__(self) -> None:
        self.n = self.ok = self.e4 = self.e5 = self.cancelled = self.pt = self.ct = self.gen_t = 0
        self.lat_sum = self.gen_ms = 0.0
        self.lat: list[float] = []
        self.ttft: list[float] = []


def _in_python(session: Session, query: UsageQuery) -> dict[tuple[Any, Any], dict[str, Any]]:
    u = UsageRecord
    stmt = select(
        GROUP_COLUMNS[query.group_by],
        u.created_at,
        u.status_code,
        u.prompt_tokens,
        u.completion_tokens,
        u.latency_ms,
        u.ttft_ms,
    ).where(*_record_filters(query))
    accs: dict[tuple[Any, Any], _Acc] = {}
    for grp, created, status, pt, ct, lat, ttft in session.execute(stmt).yield_per(20_000):
        key = (grp, _truncate(created, query.bucket))
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = _Acc()
        acc.n += 1
        acc.pt += pt
        acc.ct += ct
        acc.lat_sum += lat
        if status < 400:
            acc.ok += 1
            acc.lat.append(lat)
            if ttft is not None:
                acc.ttft.append(ttft)
            if ct > 0:
                acc.gen_t += ct
                acc.gen_ms += lat
        elif status == 499:
            acc.cancelled += 1
        elif status < 500:
            acc.e4 += 1
        else:
            acc.e5 += 1
    rows = {}
    for (grp, b), a in accs.items():
        a.lat.sort()
        a.ttft.sort()
        rows[(grp, b)] = {
            "group": grp,
            "bucket": b,
            "requests": a.n,
            "ok": a.ok,
            "errors_4xx": a.e4,
            "errors_5xx": a.e5,
            "cancelled": a.cancelled,
            "prompt_tokens": a.pt,
            "completion_tokens": a.ct,
            "avg_latency_ms": a.lat_sum / a.n if a.n else 0.0,
            "latency_p50_ms": percentile_cont(a.lat, 0.5),
            "latency_p95_ms": percentile_cont(a.lat, 0.95),
            "latency_p99_ms": percentile_cont(a.lat, 0.99),
            "ttft_p50_ms": percentile_cont(a.ttft, 0.5),
            "ttft_p95_ms": percentile_cont(a.ttft, 0.95),
            "gen_tokens": a.gen_t,
            "gen_ms": a.gen_ms,
        }
    return rows


def percentile_cont(ordered: list[float], p: float) -> float | None:
    """PostgreSQL's percentile_cont over an ascending list: linear between the closest ranks."""
    if not ordered:
        return None
    k = (len(ordered) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ---- shared -------------------------------------------------------------------------------
def _record_filters(query: UsageQuery) -> list[Any]:
    u = UsageRecord
    out = []
    if query.org_id is not None:
        out.append(u.org_id == query.org_id)
    if query.since is not None:
        out.append(u.created_at >= query.since)
    if query.until is not None:
        out.append(u.created_at < query.until)
    return out


def _add_rejections(session: Session, query: UsageQuery, rows: dict[tuple[Any, Any], dict[str, Any]]) -> None:
    r = UsageRejection
    column = REJECTION_COLUMNS[query.group_by]
    stmt = select(
        column if column is not None else func.cast(None, Integer),
        r.bucket_start,
        r.status_code,
        func.sum(r.count),
    )
    if query.org_id is not None:
        stmt = stmt.where(r.org_id == query.org_id)
    if query.since is not None:  # counts are per minute: a minute that overlaps the window counts
        stmt = stmt.where(r.bucket_start >= query.since.replace(second=0, microsecond=0))
    if query.until is not None:
        stmt = stmt.where(r.bucket_start < query.until)
    group_key = column if column is not None else None
    stmt = stmt.group_by(*(c for c in (group_key, r.bucket_start, r.status_code) if c is not None))
    for grp, minute, status, n in session.execute(stmt):
        key = (grp, _truncate(minute, query.bucket))
        row = rows.get(key)
        if row is None:
            row = rows[key] = _empty(grp, key[1])
        row[f"rejected_{status}"] = row.get(f"rejected_{status}", 0) + int(n)


def _empty(grp: Any, bucket: str | None) -> dict[str, Any]:
    return {
        "group": grp, "bucket": bucket, "requests": 0, "ok": 0, "errors_4xx": 0, "errors_5xx": 0,
        "cancelled": 0, "prompt_tokens": 0, "completion_tokens": 0, "avg_latency_ms": 0.0,
        "latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None,
        "ttft_p50_ms": None, "ttft_p95_ms": None, "gen_tokens": 0, "gen_ms": 0.0,
    }  # fmt: skip


def _finish(row: dict[str, Any], group_by: str) -> dict[str, Any]:
    out: dict[str, Any] = {group_by: row["group"]}
    if row["bucket"] is not None:
        out["bucket"] = row["bucket"]
    for status in REJECTED:
        row.setdefault(f"rejected_{status}", 0)
    row["rejected"] = sum(row[f"rejected_{s}"] for s in REJECTED)
    row["errors"] = row["errors_4xx"] + row["errors_5xx"]
    row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    row["tokens_per_s"] = row["gen_tokens"] / (row["gen_ms"] / 1000.0) if row["gen_ms"] > 0 else None
    for name in FIELDS:
        value = row[name]
        out[name] = round(value, 3) if isinstance(value, float) else value
    return out


def _truncate(when: datetime, bucket: str) -> str | None:
    if bucket == "none":
        return None
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    step = BUCKET_SECONDS[bucket]
    epoch = int(when.timestamp()) // step * step
    return _iso(datetime.fromtimestamp(epoch, UTC))


def _iso(when: datetime) -> str:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sortable(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, f"{value:>20}" if isinstance(value, int) else str(value))


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
