"""`cortexctl usage`: requests, errors, tokens and latency percentiles from the daemon."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from rich import box
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.core.client import AdminClient
from cortexctl.core.observe import usage_csv, usage_report

COLUMNS = (
    ("requests", "req"),
    ("errors", "err"),
    ("rejected", "rej"),
    ("prompt_tokens", "prompt"),
    ("completion_tokens", "compl"),
    ("latency_p50_ms", "p50ms"),
    ("latency_p95_ms", "p95ms"),
    ("latency_p99_ms", "p99ms"),
    ("ttft_p95_ms", "TTFT95"),
    ("tokens_per_s", "tok/s"),
)


def _cell(value: Any) -> str:
    """Compact: an 80-column SSH terminal fits the whole table."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e4)):
            if abs(value) >= size:
                return f"{value / size:.1f}{unit}" if unit != "k" else f"{value / 1e3:.0f}k"
        return f"{value:.1f}" if isinstance(value, float) and value < 100 else f"{value:.0f}"
    return str(value)


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
    table = Table(
        title=f"usage since {report.get('since') or 'the beginning'} by {by}",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column(by, min_width=8, overflow="fold")
    if bucket != "none":
        table.add_column("bucket")
    for _, title in COLUMNS:
        table.add_column(title, justify="right", min_width=len(title), no_wrap=True)
    for row in report["data"]:
        cells = [_cell(row.get(by))] + ([row.get("bucket", "")] if bucket != "none" else [])
        table.add_row(*cells, *(_cell(row.get(name)) for name, _ in COLUMNS))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(usage)
