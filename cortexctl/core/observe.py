"""Usage reports and the live `top` view's data, from the daemon's admin API.

`cortexctl usage` and `cortexctl top` only render what these return, so scripts
(and tests) get the same numbers through `--json`.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from typing import Any

from cortexctl.core.client import AdminClient

TOP_WINDOW_S = 60  # requests/s, tokens/s and p95 are over the last minute


def usage_report(
    client: AdminClient,
    *,
    by: str = "model",
    since: str | None = "24h",
    until: str | None = None,
    bucket: str = "none",
    all_orgs: bool = False,
) -> dict[str, Any]:
    """The /admin/usage report (JSON), exactly as the API returns it."""
    params: dict[str, Any] = {"by": by, "bucket": bucket}
    if since:
        params["since"] = since
    if until:
        params["until"] = until
    if all_orgs:
        params["all_orgs"] = "true"
    report: dict[str, Any] = client.get("/admin/usage", **params)
    return report


def usage_csv(report: dict[str, Any]) -> str:
    rows = report.get("data") or []
    columns = [report["group_by"], *(["bucket"] if report.get("bucket") not in (None, "none") else [])]
    columns += list(report.get("fields") or [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@dataclass
class TopRow:
    model: str
    replica: str
    state: str
    healthy: bool
    in_flight: int
    requests_per_s: float
    tokens_per_s: float
    p95_ms: float | None
    cpu_percent: float | None
    rss_bytes: int | None


@dataclass
class TopSnapshot:
    taken_at: float
    hostname: str
    cpu_percent: float
    cpu_count: int
    memory_used_percent: float
    memory_total_bytes: int
    gpus: list[dict[str, Any]] = field(default_factory=list)
    rows: list[TopRow] = field(default_factory=list)


def top_snapshot(client: AdminClient, *, window_s: int = TOP_WINDOW_S) -> TopSnapshot:
    system = client.get("/admin/system")
    usage = usage_report(client, by="model", since=f"{window_s}s", all_orgs=True)
    per_model = {row["model"]: row for row in usage.get("data", [])}
    host = (system.get("hosts") or [{}])[0]
    snap = TopSnapshot(
        taken_at=time.time(),
        hostname=str(host.get("hostname", "?")),
        cpu_percent=float(host.get("cpu_percent") or 0.0),
        cpu_count=int(host.get("cpu_count") or 0),
        memory_used_percent=float(host.get("memory_used_percent") or 0.0),
        memory_total_bytes=int(host.get("memory_total_bytes") or 0),
        gpus=list(system.get("gpus") or []),
    )
    replicas = system.get("replicas") or []
    count: dict[str, int] = {}
    for r in replicas:
        count[r["model"]] = count.get(r["model"], 0) + 1
    for r in replicas:
        u = per_model.get(r["model"], {})
        share = 1 / count[r["model"]]  # usage is per model: spread over its replicas
        snap.rows.append(
            TopRow(
                model=r["model"],
                replica=r["replica"],
                state=r["state"],
                healthy=bool(r["healthy"]),
                in_flight=int(r["in_flight"]),
                requests_per_s=(u.get("requests", 0) / window_s) * share,
                tokens_per_s=(u.get("completion_tokens", 0) / window_s) * share,
                p95_ms=u.get("latency_p95_ms"),
                cpu_percent=r.get("cpu_percent"),
                rss_bytes=r.get("rss_bytes"),
            )
        )
    return snap
