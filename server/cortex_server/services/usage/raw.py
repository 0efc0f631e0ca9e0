"""Exact aggregates from usage_records: for windows short enough to read row by row.

PostgreSQL computes everything in one query (`percentile_cont` over an array of
fractions: one sort per measure). Elsewhere (SQLite) the rows are streamed and the
percentiles computed here the way percentile_cont does (linear between ranks).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, func, select
from sqlalchemy.orm import Session

from cortex_server.db.models import UsageRecord
from cortex_server.services.gateway.client_gone import CLIENT_CLOSED_REQUEST

GROUP_COLUMNS = {
    "model": UsageRecord.model,
    "key": UsageRecord.api_key_id,
    "user": UsageRecord.user_id,
    "org": UsageRecord.org_id,
}
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
PERCENTILES = {"latency": (0.5, 0.95, 0.99), "ttft": (0.5, 0.95)}


class Acc:
    """Counts and sums of one (group, bucket); latencies as exact lists or histograms."""

    __slots__ = ("n", "ok", "e4", "e5", "cancelled", "pt", "ct", "lat_sum", "gen_t", "gen_ms",
                 "lat", "ttft", "lat_h", "ttft_h", "exact")  # fmt: skip

    def __init__(self) -> None:
        self.n = self.ok = self.e4 = self.e5 = self.cancelled = self.pt = self.ct = self.gen_t = 0
        self.lat_sum = self.gen_ms = 0.0
        self.lat: list[float] = []
        self.ttft: list[float] = []
        self.lat_h: list[int] | None = None  # set when the source was a histogram (rollups)
        self.ttft_h: list[int] | None = None
        self.exact: dict[str, list[float | None]] | None = None  # percentiles computed by the DB


def filters(column: Any, *, org_id: int | None, since: datetime | None, until: datetime | None) -> list[Any]:
    out = []
    if org_id is not None:
        out.append(UsageRecord.org_id == org_id)
    if since is not None:
        out.append(column >= since)
    if until is not None:
        out.append(column < until)
    return out


def postgres_exact(
    session: Session, *, group_by: str, bucket: str, org_id: int | None, since: datetime | None,
    until: datetime | None,
) -> dict[tuple[Any, str | None], Acc]:  # fmt: skip
    from sqlalchemy.dialects.postgresql import ARRAY, array

    u = UsageRecord
    group = GROUP_COLUMNS[group_by].label("grp")
    bkt = func.date_trunc(bucket, u.created_at, "UTC").label("bkt") if bucket != "none" else None
    ok = u.status_code < 400
    made = and_(ok, u.completion_tokens > 0)
    lat_pct = func.percentile_cont(array(PERCENTILES["latency"])).within_group(u.latency_ms).filter(ok)
    ttft_pct = (
        func.percentile_cont(array(PERCENTILES["ttft"]))
        .within_group(u.ttft_ms)
        .filter(and_(ok, u.ttft_ms.is_not(None)))
    )
    lat_pct.type = ttft_pct.type = ARRAY(Float)
    columns: list[ColumnElement[Any]] = [
        group,
        func.count().label("n"),
        func.count().filter(ok).label("ok"),
        func.count()
        .filter(and_(u.status_code >= 400, u.status_code < 500, u.status_code != CLIENT_CLOSED_REQUEST))
        .label("e4"),
        func.count().filter(u.status_code >= 500).label("e5"),
        func.count().filter(u.status_code == CLIENT_CLOSED_REQUEST).label("cancelled"),
        func.coalesce(func.sum(u.prompt_tokens), 0).label("pt"),
        func.coalesce(func.sum(u.completion_tokens), 0).label("ct"),
        func.coalesce(func.sum(u.latency_ms), 0.0).label("lat_sum"),
        lat_pct.label("lat_pct"),
        ttft_pct.label("ttft_pct"),
        func.coalesce(func.sum(u.completion_tokens).filter(made), 0).label("gen_t"),
        func.coalesce(func.sum(u.latency_ms).filter(made), 0.0).label("gen_ms"),
    ]
    if bkt is not None:
        columns.append(bkt)
    stmt = select(*columns).where(*filters(u.created_at, org_id=org_id, since=since, until=until))
    stmt = stmt.group_by(group, bkt) if bkt is not None else stmt.group_by(group)
    out: dict[tuple[Any, str | None], Acc] = {}
    for r in session.execute(stmt):
        a = Acc()
        a.n, a.ok, a.e4, a.e5, a.cancelled = r.n, r.ok, r.e4, r.e5, r.cancelled
        a.pt, a.ct, a.lat_sum, a.gen_t, a.gen_ms = (
            int(r.pt),
            int(r.ct),
            float(r.lat_sum),
            int(r.gen_t),
            float(r.gen_ms),
        )
        a.exact = {
            "latency": list(r.lat_pct) if r.lat_pct else [None] * 3,
            "ttft": list(r.ttft_pct) if r.ttft_pct else [None] * 2,
        }
        out[(r.grp, iso(r.bkt) if bkt is not None else None)] = a
    return out


def stream(
    session: Session, *, group_by: str, bucket: str, org_id: int | None, since: datetime | None,
    until: datetime | None, into: dict[tuple[Any, str | None], Acc] | None = None,
) -> dict[tuple[Any, str | None], Acc]:  # fmt: skip
    """Read the rows one by one into accumulators (exact latency lists)."""
    u = UsageRecord
    stmt = select(
        GROUP_COLUMNS[group_by], u.created_at, u.status_code, u.prompt_tokens, u.completion_tokens,
        u.latency_ms, u.ttft_ms,
    ).where(*filters(u.created_at, org_id=org_id, since=since, until=until))  # fmt: skip
    accs = {} if into is None else into
    for grp, created, status, pt, ct, lat, ttft in session.execute(stmt).yield_per(20_000):
        key = (grp, truncate(created, bucket))
        a = accs.get(key)
        if a is None:
            a = accs[key] = Acc()
        a.n += 1
        a.pt += pt
        a.ct += ct
        a.lat_sum += lat
        if status < 400:
            a.ok += 1
            a.lat.append(lat)
            if ttft is not None:
                a.ttft.append(ttft)
            if ct > 0:
                a.gen_t += ct
                a.gen_ms += lat
        elif status == CLIENT_CLOSED_REQUEST:
            a.cancelled += 1
        elif status < 500:
            a.e4 += 1
        else:
            a.e5 += 1
    return accs


def percentile_cont(ordered: list[float], p: float) -> float | None:
    """PostgreSQL's percentile_cont over an ascending list: linear between the closest ranks."""
    if not ordered:
        return None
    k = (len(ordered) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def truncate(when: datetime, bucket: str) -> str | None:
    if bucket == "none":
        return None
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    step = BUCKET_SECONDS[bucket]
    return iso(datetime.fromtimestamp(int(when.timestamp()) // step * step, UTC))


def iso(when: datetime) -> str:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
