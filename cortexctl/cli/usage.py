"""`cortexctl usage`: requests, errors, tokens and latency percentiles from the daemon."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.core.client import AdminClient
from cortexctl.core.observe import usage_csv, usage_report

COLUMNS = (
    ("requests", "requests"),
    ("errors", "errors"),
    ("rejected", "rejected"),
    ("prompt_tokens", "prompt tok"),
    ("completion_tokens", "compl tok"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p95_ms", "p95 ms"),
    ("latency_p99_ms", "p99 ms"),
    ("ttft_p50_ms", "TTFT p50"),
    ("ttft_p95_ms", "TTFT p95"),
    ("tokens_per_s", "tok/s"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def usage(
    ctx: typer.Context,
    by: Annotated[
        Literal["model", "key", "user", "org"], typer.Option("--by", help="Group by model, key, user or org.")
    ] = "model",
    since: Annotated[
        str, typer.Option("--since", help="Window back from now (30m, 24h, 7d) or ISO time.")
    ] = "24h",
    until: Annotated[
        str | None, typer.Option("--until", help="End: window back from now or ISO time.")
    ] = None,
    bucket: Annotated[
        Literal["none", "minute", "hour", "day"], typer.Option("--bucket", help="Also split by time (UTC).")
    ] = "none",
    all_orgs: Annotated[bool, typer.Option("--all-orgs", help="Every org (operators).")] = False,
    json_out: JsonOpt = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Usage by model, key, user or org: requests, errors, rejections, tokens, latency/TTFT percentiles."""
    report = usage_report(
        AdminClient(settings_of(ctx)), by=by, since=since, until=until, bucket=bucket, all_orgs=all_orgs
    )
    if json_out:
        print_json(report)
        return
    if csv_out:
        typer.echo(usage_csv(report), nl=False)
        return
    table = Table(title=f"usage since {report.get('since') or 'the beginning'} by {by}")
    table.add_column(by)
    if bucket != "none":
        table.add_column("bucket")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for row in report["data"]:
        cells = [_cell(row.get(by))] + ([row.get("bucket", "")] if bucket != "none" else [])
        table.add_row(*cells, *(_cell(row.get(name)) for name, _ in COLUMNS))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(usage)
