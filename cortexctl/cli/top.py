"""`cortexctl top`: a live view of models, replicas, load and hardware; refreshes until Ctrl-C."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.core.client import AdminClient
from cortexctl.core.observe import TopSnapshot, top_snapshot

_STATE_STYLE = {"running": "green", "loading": "yellow", "starting": "yellow", "failed": "bold red"}


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


def _num(v: float | None, fmt: str = "{:,.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def render(snap: TopSnapshot) -> RenderableType:
    when = datetime.fromtimestamp(snap.taken_at, UTC).strftime("%H:%M:%S")
    header = Text.assemble(
        (f"cortex top — {snap.hostname}  {when} UTC  ", "bold"),
        f"CPU {snap.cpu_percent:.0f}% of {snap.cpu_count}  ",
        f"RAM {snap.memory_used_percent:.0f}% of {snap.memory_total_bytes / 2**30:.1f} GiB",
    )
    models = Table(expand=True, title="models (rates over the last minute)")
    for title, justify in (
        ("model", "left"), ("replica", "left"), ("state", "left"), ("queue", "right"), ("req/s", "right"),
        ("tok/s", "right"), ("p95 ms", "right"), ("CPU %", "right"), ("RSS", "right"),
    ):  # fmt: skip
        models.add_column(title, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in snap.rows:
        state = r.state if r.healthy else f"{r.state} (out)"
        models.add_row(
            r.model,
            r.replica,
            Text(state, style=_STATE_STYLE.get(r.state, "")),
            str(r.in_flight),
            _num(r.requests_per_s, "{:,.2f}"),
            _num(r.tokens_per_s),
            _num(r.p95_ms),
            _num(r.cpu_percent),
            _mib(r.rss_bytes),
        )
    if not snap.rows:
        models.add_row("(no model has replicas)", "", "", "", "", "", "", "", "")
    parts: list[RenderableType] = [header, models]
    if snap.gpus:
        gpus = Table(expand=True, title="GPUs")
        for title in ("gpu", "name", "util %", "memory", "temp °C", "power W", "engines"):
            gpus.add_column(title, no_wrap=True)
        for g in snap.gpus:
            engines = ", ".join(
                f"{p.get('replica') or p['pid']}: {_mib(p.get('used_memory_bytes'))}" for p in g["processes"]
            )
            gpus.add_row(
                str(g["index"]),
                g["name"],
                _num(g.get("utilization_percent"), "{:.0f}"),
                f"{_mib(g['memory_used_bytes'])} / {_mib(g['memory_total_bytes'])}",
                _num(g.get("temperature_c"), "{:.0f}"),
                _num(g.get("power_w"), "{:.0f}"),
                engines or "-",
            )
        parts.append(gpus)
    else:
        parts.append(Text("no GPUs (NVML found none)", style="dim"))
    return Group(*parts)


def top(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option("--interval", "-n", min=0.2, help="Seconds between refreshes.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Live view: models and replicas with state, queue, req/s, tok/s, p95, CPU/RAM, GPUs. Ctrl-C quits."""
    client = AdminClient(settings_of(ctx), timeout_s=10.0)
    if json_out:
        from dataclasses import asdict

        print_json(asdict(top_snapshot(client)))
        return
    if once:
        console.print(render(top_snapshot(client)))
        return
    try:
        with Live(render(top_snapshot(client)), console=console, screen=False, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(top_snapshot(client)), refresh=True)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command()(top)
