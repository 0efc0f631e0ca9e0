"""Usage analytics on a month of a busy gateway: 5 million usage rows in PostgreSQL.

Run (from the repository root, in the project's venv; PostgreSQL reachable):

    python bench/usage_analytics_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

It creates a throwaway database next to the one named (dropped at the end unless
--keep), migrates it to head, seeds --rows rows (default 5,000,000) over the last
30 days with `generate_series` in one INSERT … SELECT (20 orgs, the busiest with a
third of the traffic; 8 models, 200 keys, 100 users; ~4 % errors, ~1 % cancelled,
70 % streamed with a TTFT), ANALYZEs, then times the /admin/usage queries
(`cortex_server.services.usage.report`, the code the API runs) — each one --repeat
times, reporting the median — and prints a table and one JSON line.

Not part of CI: seeding takes minutes on a small VM.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cortex_server.db.migrate import upgrade_to_head
from cortex_server.db.models import HISTOGRAM_BUCKETS
from cortex_server.services.usage.report import UsageQuery, report

# A key belongs to one user and one org (key k: user k % 100, org 1 for a third of the keys).
SEED_SQL = """
INSERT INTO usage_records (request_id, created_at, org_id, user_id, api_key_id, model, replica,
                           endpoint, prompt_tokens, completion_tokens, latency_ms, ttft_ms,
                           status_code, streamed, cancelled)
SELECT
  'bench-' || g,
  now() - (random() * interval '30 days'),
  CASE WHEN k % 3 = 0 THEN 1 ELSE 2 + k % 19 END,
  1 + k % 100,
  k,
  'model-' || m,
  'model-' || m || '/0',
  'chat.completions',
  (50 + random() * 2000)::int,
  (random() * 800)::int,
  exp(4 + random() * 6),
  CASE WHEN random() < 0.7 THEN exp(2 + random() * 5) END,
  CASE WHEN r < 0.95 THEN 200 WHEN r < 0.97 THEN 400 WHEN r < 0.98 THEN 502
       WHEN r < 0.99 THEN 504 ELSE 499 END,
  random() < 0.7,
  r >= 0.99
FROM (SELECT g, r, k, CASE WHEN random() < 0.8 THEN k % 8 ELSE (random() * 7)::int END AS m
      FROM (SELECT g, random() AS r, 1 + (random() * 199)::int AS k
            FROM generate_series(1, :rows) AS g) AS keyed) AS s
"""


def daily_sql() -> str:
    """The daily rollups, summed from the hourly ones."""
    from cortex_server.services.usage.rollups import MEASURES

    cols = ", ".join(MEASURES)
    sums = ", ".join(f"sum({c})" for c in MEASURES)
    return f"""
INSERT INTO usage_rollups_daily (bucket_start, org_id, user_id, api_key_id, model, {cols})
SELECT date_trunc('day', bucket_start, 'UTC'), org_id, user_id, api_key_id, model, {sums}
FROM usage_rollups_hourly GROUP BY 1, 2, 3, 4, 5
"""


def rollup_sql() -> str:
    """The hourly rollups of the seeded rows, in SQL (what the usage writer does row by row)."""
    bucket = "CASE WHEN {c} <= 1 THEN 0 ELSE LEAST({top}, CEIL(2 * ln({c}) / ln(2)))::int END"
    lat = bucket.format(c="latency_ms", top=HISTOGRAM_BUCKETS - 1)
    ttft = bucket.format(c="ttft_ms", top=HISTOGRAM_BUCKETS - 1)
    hist = []
    for i in range(HISTOGRAM_BUCKETS):
        hist.append(f"count(*) FILTER (WHERE status_code < 400 AND {lat} = {i}) AS lat_h{i}")
        hist.append(f"count(*) FILTER (WHERE status_code < 400 AND ttft_ms IS NOT NULL AND {ttft} = {i})")
    hist_names = [n for i in range(HISTOGRAM_BUCKETS) for n in (f"lat_h{i}", f"ttft_h{i}")]
    return f"""
INSERT INTO usage_rollups_hourly (bucket_start, org_id, user_id, api_key_id, model, requests, ok, errors_4xx,
    errors_5xx, cancelled, prompt_tokens, completion_tokens, gen_tokens, latency_ms_sum, gen_ms,
    {", ".join(hist_names)})
SELECT date_trunc('hour', created_at, 'UTC'), coalesce(org_id, 0), coalesce(user_id, 0),
    coalesce(api_key_id, 0), model, count(*), count(*) FILTER (WHERE status_code < 400),
    count(*) FILTER (WHERE status_code >= 400 AND status_code < 500 AND status_code <> 499),
    count(*) FILTER (WHERE status_code >= 500), count(*) FILTER (WHERE status_code = 499),
    sum(prompt_tokens), sum(completion_tokens),
    coalesce(sum(completion_tokens) FILTER (WHERE status_code < 400 AND completion_tokens > 0), 0),
    sum(latency_ms),
    coalesce(sum(latency_ms) FILTER (WHERE status_code < 400 AND completion_tokens > 0), 0),
    {", ".join(hist)}
FROM usage_records GROUP BY 1, 2, 3, 4, 5
"""


QUERIES = {  # label: (org, by, bucket, window back from now)
    "one org (1/3 of traffic), 30 days, by model": (1, "model", "none", timedelta(days=30)),
    "one org, 30 days, by key": (1, "key", "none", timedelta(days=30)),
    "one org, 30 days, by model per day": (1, "model", "day", timedelta(days=30)),
    "one org, last 24 h, by model per hour": (1, "model", "hour", timedelta(hours=24)),
    "one org, last hour, by model (exact path)": (1, "model", "none", timedelta(hours=1)),
    "small org (1/30 of traffic), 30 days, by model": (5, "model", "none", timedelta(days=30)),
    "every org (operator), 30 days, by org": (None, "org", "none", timedelta(days=30)),
    "every org, 30 days, by model per hour": (None, "model", "hour", timedelta(days=30)),
    "every org, last 6 h, by model (exact path)": (None, "model", "none", timedelta(hours=6)),
}


def seed(engine: Engine, rows: int, figures: dict[str, object]) -> None:
    upgrade_to_head(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(SEED_SQL), {"rows": rows})
    figures["seed_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(rollup_sql()))
        conn.execute(text(daily_sql()))
        figures["hourly_rollup_rows"] = conn.execute(
            text("SELECT count(*) FROM usage_rollups_hourly")
        ).scalar()
        figures["daily_rollup_rows"] = conn.execute(text("SELECT count(*) FROM usage_rollups_daily")).scalar()
    figures["rollup_s"] = round(time.perf_counter() - started, 1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("usage_records", "usage_rollups_hourly", "usage_rollups_daily"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    print(
        f"seeded {rows:,} rows in {figures['seed_s']} s; rollups ({figures['rollup_s']} s):"
        f" {figures['hourly_rollup_rows']:,} hourly, {figures['daily_rollup_rows']:,} daily"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--database-url", required=True, help="a PostgreSQL URL; a fresh database is made beside it"
    )
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the seeded database")
    ap.add_argument("--reuse", help="time the queries on this already seeded database (from --keep)")
    args = ap.parse_args()

    base = make_url(args.database_url)
    name = args.reuse or f"cortex_bench_usage_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    if not args.reuse:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(base.set(database=name))
    figures: dict[str, object] = {"rows": args.rows, "database": name}
    try:
        if not args.reuse:
            seed(engine, args.rows, figures)
        timings = {}
        now = datetime.now(UTC)
        for label, (org, by, bucket, window) in QUERIES.items():
            query = UsageQuery(org_id=org, group_by=by, bucket=bucket, since=now - window)  # type: ignore[arg-type]
            runs, groups = [], 0
            for _ in range(args.repeat):
                with Session(engine) as session:
                    t0 = time.perf_counter()
                    rows = report(session, query)
                    runs.append(time.perf_counter() - t0)
                    groups = len(rows)
            with Session(engine) as session:
                scanned = sum(r["requests"] for r in report(session, query))
            timings[label] = {
                "median_s": round(statistics.median(runs), 3),
                "groups": groups,
                "rows": scanned,
            }
            print(f"{statistics.median(runs):8.3f} s  {groups:5d} groups  {scanned:>10,} rows  {label}")
        figures["queries"] = timings
    finally:
        engine.dispose()
        if not (args.keep or args.reuse):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
