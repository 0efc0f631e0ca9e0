"""observability: rejection counts, and the index usage analytics read by

Revision ID: 0003_observability
Revises: 0002_access
Create Date: 2026-12-01

`usage_rejections` holds per-minute counts of requests refused with 401/403/429
(see db.models.UsageRejection). `usage_rollups_hourly` / `_daily` hold sums and
latency/TTFT histograms per hour / day and (org, user, key, model), backfilled here
from the rows already stored; `ix_usage_records_org_created` serves the raw-row reads (short windows).
"""

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

BUCKETS = 45  # = db.models.HISTOGRAM_BUCKETS at this revision: upper bounds 2^(i/2) ms
KEY = ("bucket_start", "org_id", "user_id", "api_key_id", "model")
COUNTS = ("requests", "ok", "errors_4xx", "errors_5xx", "cancelled", "prompt_tokens", "completion_tokens")

revision = "0003_observability"
down_revision = "0002_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_rejections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_rejections_bucket_start", "usage_rejections", ["bucket_start"])
    op.create_index("ix_usage_records_org_created", "usage_records", ["org_id", "created_at"])
    tables = {grain: _create_rollups(f"usage_rollups_{grain}") for grain in ("hourly", "daily")}
    _backfill(tables)


def _create_rollups(name: str) -> sa.Table:
    table = op.create_table(
        name,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        *[
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in (*COUNTS, "gen_tokens")
        ],
        sa.Column("latency_ms_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("gen_ms", sa.Float(), nullable=False, server_default="0"),
        *[
            sa.Column(f"{kind}_h{i}", sa.Integer(), nullable=False, server_default="0")
            for kind in ("lat", "ttft")
            for i in range(BUCKETS)
        ],
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(*KEY, name=f"uq_{name}_key"),
    )
    op.create_index(f"ix_{name}_org_start", name, ["org_id", "bucket_start"])
    return table


def _bucket(ms: float) -> int:
    return 0 if ms <= 1.0 else min(BUCKETS - 1, math.ceil(2 * math.log2(ms)))


def _backfill(tables: dict[str, sa.Table]) -> None:
    """Roll up the usage rows stored before this revision (streamed; one pass per grain)."""
    for grain, table in tables.items():
        _backfill_one(table, day=grain == "daily")


def _backfill_one(rollups: sa.Table, *, day: bool) -> None:
    conn = op.get_bind()
    records = sa.table(
        "usage_records",
        *(sa.column(c) for c in ("created_at", "org_id", "user_id", "api_key_id", "model", "status_code")),
        *(sa.column(c) for c in ("prompt_tokens", "completion_tokens", "latency_ms", "ttft_ms")),
    )
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in conn.execute(sa.select(records)).mappings():
        when = r["created_at"]
        if isinstance(when, str):  # SQLite hands back text here (no type processing)
            when = datetime.fromisoformat(when)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        start = when.replace(minute=0, second=0, microsecond=0)
        key = (start.replace(hour=0) if day else start, r["org_id"] or 0, r["user_id"] or 0,
               r["api_key_id"] or 0, r["model"])  # fmt: skip
        a = acc.get(key)
        if a is None:
            a = acc[key] = dict.fromkeys((*COUNTS, "gen_tokens", "latency_ms_sum", "gen_ms"), 0)
        status, lat = r["status_code"], float(r["latency_ms"] or 0.0)
        a["requests"] += 1
        a["prompt_tokens"] += r["prompt_tokens"] or 0
        a["completion_tokens"] += r["completion_tokens"] or 0
        a["latency_ms_sum"] += lat
        if status < 400:
            a["ok"] += 1
            a[f"lat_h{_bucket(lat)}"] = a.get(f"lat_h{_bucket(lat)}", 0) + 1
            if r["ttft_ms"] is not None:
                b = _bucket(float(r["ttft_ms"]))
                a[f"ttft_h{b}"] = a.get(f"ttft_h{b}", 0) + 1
            if (r["completion_tokens"] or 0) > 0:
                a["gen_tokens"] += r["completion_tokens"]
                a["gen_ms"] += lat
        elif status == 499:
            a["cancelled"] += 1
        elif status < 500:
            a["errors_4xx"] += 1
        else:
            a["errors_5xx"] += 1
    rows = [{**dict(zip(KEY, key, strict=True)), **values} for key, values in acc.items()]
    names = {c.name for c in rollups.columns} - {"id"}
    for row in rows:
        for name in names - row.keys():
            row[name] = 0
    for i in range(0, len(rows), 1000):
        conn.execute(rollups.insert(), rows[i : i + 1000])


def downgrade() -> None:
    for name in ("usage_rollups_hourly", "usage_rollups_daily"):
        op.drop_index(f"ix_{name}_org_start", table_name=name)
        op.drop_table(name)
    op.drop_index("ix_usage_records_org_created", table_name="usage_records")
    op.drop_index("ix_usage_rejections_bucket_start", table_name="usage_rejections")
    op.drop_table("usage_rejections")
