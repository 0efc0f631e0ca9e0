"""`cortexctl doctor`: is this host ready to run CORTEX?"""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, print_json, settings_of

_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}


def doctor(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Check Python, disk, port, database, Redis, Docker and GPUs; exit 1 if anything FAILs."""
    from cortexctl.core.doctor import FAIL, run_checks

    checks = run_checks(settings_of(ctx))
    if json_out:
        print_json([asdict(c) for c in checks])
    else:
        table = Table("check", "status", "detail", "fix")
        for c in checks:
            table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}[/]", c.detail, c.fix or "")
        console.print(table)
    if any(c.status == FAIL for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
