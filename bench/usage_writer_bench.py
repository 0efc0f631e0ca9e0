"""The usage writer's insert: CPU per usage row, bulk path vs SQLAlchemy's RETURNING path, same run.

Run (from the repository root, in the project's venv):

    python bench/usage_writer_bench.py [--database-url URL] [--rows 20000] [--batch 1000] [--rounds 3]

Default database: a throwaway SQLite file. With a PostgreSQL URL it creates a throwaway
database next to the one named and drops it at the end. Each round inserts `--rows` fresh
rows (the gateway's usage rows: datetimes, NULLs, floats; `--keys` keys, two models) in
batches of `--batch`, once
through the writer's bulk path (bulk_insert.py: the driver's executemany, rollups by
position) and once through the path it falls back to for a replay (SQLAlchemy's
INSERT … RETURNING plus the same rollups), alternating; it reports the writer thread's CPU
per row (process time: the database server's own CPU is not in it) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cortex_server.db.engine import make_engine
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.metering.writer import UsageWriter


def usage_rows(n: int, *, start: datetime, keys: int) -> list[dict[str, Any]]:
    """`keys` API keys (each of one user and one org; every fifth key a service key with no
    user) calling two models: at most 2 × keys rollup rows per hour."""
    tag = uuid.uuid4().hex[:12]
    return [
        {
            "request_id": f"{tag}{i:016x}",
            "created_at": start + timedelta(milliseconds=i),
            "org_id": 1 + (i % keys) % 3,
            "user_id": None if (i % keys) % 5 == 0 else 10 + i % keys,
            "api_key_id": 1 + i % keys,
            "model": ("alpha", "beta")[(i // keys) % 2],
            "replica": "alpha/0",
            "endpoint": "chat.completions",
            "prompt_tokens": 20 + i % 50,
            "completion_tokens": i % 200,
            "latency_ms": 1.0 + (i % 997) / 10,
            "ttft_ms": None if i % 3 else 0.5 + (i % 89) / 10,
            "status_code": 200 if i % 20 else 429,
            "streamed": i % 3 == 0,
            "cancelled": False,
        }
        for i in range(n)
    ]


def cpu_per_row(writer: UsageWriter, rows: list[dict[str, Any]], batch: int) -> float:
    started = time.process_time()
    for i in range(0, len(rows), batch):
        writer._insert(rows[i : i + batch])
    return (time.process_time() - started) / len(rows) * 1e6


def run(url: str, *, rows: int, batch: int, rounds: int, keys: int) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    with tempfile.TemporaryDirectory(prefix="cortex-writer-bench-") as tmp:
        bulk = UsageWriter(engine=engine, spool=UsageSpool(Path(tmp) / "a.jsonl"))
        returning = UsageWriter(engine=engine, spool=UsageSpool(Path(tmp) / "b.jsonl"))
        returning._bulk = None  # the replay path: INSERT … RETURNING, then the rollups
        start = datetime.now(UTC)
        cpu_per_row(
            bulk, usage_rows(min(rows, 2000), start=start, keys=keys), batch
        )  # warm-up: compiled statements
        cpu_per_row(returning, usage_rows(min(rows, 2000), start=start, keys=keys), batch)
        figures: dict[str, list[float]] = {"bulk": [], "returning": []}
        for _ in range(rounds):
            figures["bulk"].append(cpu_per_row(bulk, usage_rows(rows, start=start, keys=keys), batch))
            figures["returning"].append(
                cpu_per_row(returning, usage_rows(rows, start=start, keys=keys), batch)
            )
    engine.dispose()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    return {
        "dialect": make_url(url).get_backend_name(),
        "rows": rows,
        "batch": batch,
        "keys": keys,
        "rounds": rounds,
        "cpu_us_per_row": figures,
        "median_cpu_us_per_row": medians,
        "returning_over_bulk": medians["returning"] / medians["bulk"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=10, help="distinct API keys in the traffic")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cortex-writer-bench-db-") as tmp:
        if args.database_url is None or args.database_url.startswith("sqlite"):
            url = args.database_url or f"sqlite:///{Path(tmp) / 'usage.db'}"
            result = run(url, rows=args.rows, batch=args.batch, rounds=args.rounds, keys=args.keys)
        else:  # a throwaway PostgreSQL database beside the one named
            admin_url = make_url(args.database_url)
            name = f"cortex_writer_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = admin_url.set(database=name).render_as_string(hide_password=False)
                result = run(url, rows=args.rows, batch=args.batch, rounds=args.rounds, keys=args.keys)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                admin.dispose()
    m = result["median_cpu_us_per_row"]
    print(
        f"usage writer, {result['dialect']}, {args.rows} rows × {args.rounds} rounds, "
        f"batches of {args.batch}, {args.keys} keys: "
        f"bulk {m['bulk']:.1f} µs CPU/row, RETURNING path {m['returning']:.1f} µs CPU/row "
        f"(×{result['returning_over_bulk']:.2f})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
