"""The usage report behind /admin/usage, `cortexctl usage` and `top`.

Grouped by model, key, user or org, optionally per time bucket (minute/hour/day, UTC):
requests, errors by class, client cancellations, rejections (401/403/429), tokens,
latency p50/p95/p99, TTFT p50/p95 and tokens/s.

Two paths, chosen by the window:
- up to EXACT_WINDOW (and any per-minute report): exact, from the raw rows —
  `percentile_cont` on PostgreSQL, the same interpolation in Python elsewhere;
- longer: whole days from the daily rollups (unless bucketed by hour), whole hours
  at either end from the hourly rollups, the partial hours from the raw rows, merged;
  sums stay exact, percentiles come from the merged histogram (see histogram.py).

Latency/TTFT percentiles and tokens/s are over successful requests (status < 400): a
fast 4xx would make a slow model look quick. tokens/s = completion tokens / seconds
spent on the successful requests that produced them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Integer, func, null, select
from sqlalchemy.orm import Session

from cortex_server.db.models import HISTOGRAM_BUCKETS, UsageRecord, UsageRejection
from cortex_server.services.usage import histogram, raw, rollups
from cortexctl.core.errors import InvalidRequest

GroupBy = Literal["model", "key", "user", "org"]
Bucket = Literal["none", "minute", "hour", "day"]
EXACT_WINDOW = timedelta(hours=6)
HOUR_S, DAY_S = 3600, 86400
REJECTED = (401, 403, 429)
FIELDS = (
    "requests", "ok", "errors", "errors_4xx", "errors_5xx", "cancelled",
    "rejected", "rejected_401", "rejected_403", "rejected_429",
    "prompt_tokens", "completion_tokens", "total_tokens",
    "avg_latency_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "ttft_p50_ms", "ttft_p95_ms", "tokens_per_s", "percentiles",
)  # fmt: skip
REJECTION_GROUPS = {
    "key": UsageRejection.api_key_id,
    "user": UsageRejection.user_id,
    "org": UsageRejection.org_id,
}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Accs = dict[tuple[Any, str | None], raw.Acc]


@dataclass(frozen=True)
class UsageQuery:
    org_id: int | None  # None: every org (operators only; the route decides)
    group_by: GroupBy = "model"
    bucket: Bucket = "none"
    since: datetime | None = None
    until: datetime | None = None


def parse_time(value: str | None, *, param: str = "since", now: datetime | None = None) -> datetime | None:
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
            f"{param}: {value!r} is neither a time nor a window.",
            fix="Use an ISO time (2026-12-01T00:00:00Z) or a window such as 30m, 24h, 7d.",
            param=param,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def report(session: Session, query: UsageQuery, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per (group, bucket) with the measures in FIELDS, ordered by bucket then group."""
    now = now or datetime.now(UTC)
    since, until = query.since, query.until or now
    if since is not None and since >= until:
        return []
    args: dict[str, Any] = {"group_by": query.group_by, "bucket": query.bucket, "org_id": query.org_id}
    if query.bucket == "minute" or (since is not None and until - since <= EXACT_WINDOW):
        if session.get_bind().dialect.name == "postgresql":
            accs = raw.postgres_exact(session, since=since, until=query.until, **args)
        else:
            accs = raw.stream(session, since=since, until=query.until, **args)
        kind = "exact"
    else:
        accs = {}
        edges: Accs = {}
        start = since if since is not None else _oldest_row(session) or until
        for source, lo, hi in segments(start, until, days=query.bucket != "hour"):
            if source == "raw":
                raw.stream(session, since=lo, until=hi, into=edges, **args)
            else:
                rollups.read(session, grain=source, since=lo, until=hi, into=accs, **args)
        _merge(accs, edges)
        kind = "histogram"
    rejected = _rejections(session, query, since=since, until=query.until)
    keys = sorted(set(accs) | set(rejected), key=lambda k: (k[1] or "", _sortable(k[0])))
    return [_row(query.group_by, key, accs.get(key), rejected.get(key, {}), kind) for key in keys]


def _merge(into: Accs, edges: Accs) -> None:
    for key, e in edges.items():
        a = into.get(key)
        if a is None:
            a = into[key] = raw.Acc()
            a.lat_h, a.ttft_h = [0] * HISTOGRAM_BUCKETS, [0] * HISTOGRAM_BUCKETS
        a.n, a.ok, a.e4, a.e5 = a.n + e.n, a.ok + e.ok, a.e4 + e.e4, a.e5 + e.e5
        a.cancelled, a.pt, a.ct, a.gen_t = (
            a.cancelled + e.cancelled,
            a.pt + e.pt,
            a.ct + e.ct,
            a.gen_t + e.gen_t,
        )
        a.lat_sum, a.gen_ms = a.lat_sum + e.lat_sum, a.gen_ms + e.gen_ms
        assert a.lat_h is not None and a.ttft_h is not None
        for v in e.lat:
            a.lat_h[histogram.bucket_of(v)] += 1
        for v in e.ttft:
            a.ttft_h[histogram.bucket_of(v)] += 1


def _rejections(
    session: Session, query: UsageQuery, *, since: datetime | None, until: datetime | None
) -> dict[tuple[Any, str | None], dict[int, int]]:
    """Rejection counts per (group, bucket). They carry no model: by=model puts them under null."""
    r = UsageRejection
    column = REJECTION_GROUPS.get(query.group_by)
    group = column if column is not None else func.cast(null(), Integer)
    stmt = select(group.label("grp"), r.bucket_start, r.status_code, func.sum(r.count).label("n"))
    if query.org_id is not None:
        stmt = stmt.where(r.org_id == query.org_id)
    if since is not None:  # counted per minute: a minute that starts in the window counts
        stmt = stmt.where(r.bucket_start >= since.replace(second=0, microsecond=0))
    if until is not None:
        stmt = stmt.where(r.bucket_start < until)
    stmt = stmt.group_by(*(c for c in (column, r.bucket_start, r.status_code) if c is not None))
    out: dict[tuple[Any, str | None], dict[int, int]] = {}
    for row in session.execute(stmt):
        counts = out.setdefault((row.grp, raw.truncate(row.bucket_start, query.bucket)), {})
        counts[row.status_code] = counts.get(row.status_code, 0) + int(row.n)
    return out


def _row(
    group_by: str, key: tuple[Any, str | None], a: raw.Acc | None, rejected: dict[int, int], kind: str
) -> dict[str, Any]:
    a = a or raw.Acc()
    out: dict[str, Any] = {group_by: key[0]}
    if key[1] is not None:
        out["bucket"] = key[1]
    if a.exact is not None:
        lat, ttft = a.exact["latency"], a.exact["ttft"]
    elif a.lat_h is not None and a.ttft_h is not None:
        lat = histogram.percentiles(a.lat_h, raw.PERCENTILES["latency"])
        ttft = histogram.percentiles(a.ttft_h, raw.PERCENTILES["ttft"])
    else:
        a.lat.sort()
        a.ttft.sort()
        lat = [raw.percentile_cont(a.lat, p) for p in raw.PERCENTILES["latency"]]
        ttft = [raw.percentile_cont(a.ttft, p) for p in raw.PERCENTILES["ttft"]]
    values: dict[str, Any] = {
        "requests": a.n,
        "ok": a.ok,
        "errors": a.e4 + a.e5,
        "errors_4xx": a.e4,
        "errors_5xx": a.e5,
        "cancelled": a.cancelled,
        **{f"rejected_{s}": rejected.get(s, 0) for s in REJECTED},
        "rejected": sum(rejected.get(s, 0) for s in REJECTED),
        "prompt_tokens": a.pt,
        "completion_tokens": a.ct,
        "total_tokens": a.pt + a.ct,
        "avg_latency_ms": a.lat_sum / a.n if a.n else 0.0,
        "latency_p50_ms": lat[0],
        "latency_p95_ms": lat[1],
        "latency_p99_ms": lat[2],
        "ttft_p50_ms": ttft[0],
        "ttft_p95_ms": ttft[1],
        "tokens_per_s": a.gen_t / (a.gen_ms / 1000.0) if a.gen_ms > 0 else None,
        "percentiles": kind,
    }
    for name in FIELDS:
        v = values[name]
        out[name] = round(v, 3) if isinstance(v, float) else v
    return out


def _oldest_row(session: Session) -> datetime | None:
    oldest = session.scalar(select(func.min(UsageRecord.created_at)))  # ix_usage_records_created_at
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return oldest


Segment = tuple[str, datetime, datetime]  # ("raw" | "hourly" | "daily", start, end)


def segments(since: datetime, until: datetime, *, days: bool) -> list[Segment]:
    """Cover [since, until) with whole days (if allowed), whole hours, and raw rows at the ends."""
    if days:
        d0, d1 = _ceil(since, DAY_S), _floor(until, DAY_S)
        if d0 < d1:
            return [*_hours(since, d0), ("daily", d0, d1), *_hours(d1, until)]
    return _hours(since, until)


def _hours(since: datetime, until: datetime) -> list[Segment]:
    if since >= until:
        return []
    h0, h1 = _ceil(since, HOUR_S), _floor(until, HOUR_S)
    if h0 >= h1:
        return [("raw", since, until)]
    return [
        *([("raw", since, h0)] if since < h0 else []),
        ("hourly", h0, h1),
        *([("raw", h1, until)] if h1 < until else []),
    ]


def _floor(when: datetime, step: int) -> datetime:
    return datetime.fromtimestamp(int(when.timestamp()) // step * step, UTC)


def _ceil(when: datetime, step: int) -> datetime:
    floor = _floor(when, step)
    return floor if floor == when else floor + timedelta(seconds=step)


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
