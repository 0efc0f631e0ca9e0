"""Rich rendering of a validation report: breakdown table, checks, dry-run command.

Renders the report's dict form, so a report computed here and one that came back
from the daemon's admin API look the same.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from cortexctl.validation.breakdown import fmt_bytes
from cortexctl.validation.report import ValidationReport

STATUS_STYLE = {"OK": "bold green", "WARN": "bold yellow", "FAIL": "bold red"}


def breakdown_table(report: dict[str, Any]) -> Table | None:
    b = report.get("breakdown")
    if b is None:
        return None
    per = " (per GPU)" if b.get("per_gpu") else ""
    approx = " (approximate)" if b.get("facts", {}).get("estimate") == "approximate" else ""
    t = Table(title=f"Memory estimate — {report['engine']}{per}{approx}", title_justify="left")
    t.add_column("component")
    t.add_column("device")
    t.add_column("bytes", justify="right")
    t.add_column("how")
    for c in b["components"]:
        t.add_row(c["name"], c["device"], fmt_bytes(c["bytes"]), c["note"])
    if b["gpu_bytes"]:
        t.add_row("[bold]total GPU[/]", "gpu", f"[bold]{fmt_bytes(b['gpu_bytes'])}[/]", "")
    if b["host_bytes"]:
        t.add_row("[bold]total host[/]", "host", f"[bold]{fmt_bytes(b['host_bytes'])}[/]", "")
    return t


def checks_table(report: dict[str, Any]) -> Table:
    t = Table(title="Checks", title_justify="left")
    t.add_column("", no_wrap=True)
    t.add_column("check", no_wrap=True)
    t.add_column("detail")
    t.add_column("fix")
    for c in report["checks"]:
        t.add_row(
            Text(c["status"], style=STATUS_STYLE.get(c["status"], "")), c["name"], c["detail"], c["fix"] or ""
        )
    return t


def render_dict(report: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = []
    m = report.get("model")
    head = f"[bold]{report['recipe']}[/] · engine {report['engine']} · model {report['model_path']}"
    if m:
        head += (
            f"\n{m['architecture']}: {m['n_params'] / 1e9:.2f} B params, {m['n_layers']} layers,"
            f" {m['n_heads']} heads"
            f" / {max(m['n_kv_heads'])} KV heads × {m['head_dim_k']}, context {m['context_length']}"
            + (f", sliding window {m['sliding_window']}" if m.get("sliding_window") else "")
            + f", weights {fmt_bytes(m['weight_bytes'])}"
        )
    gpus = (
        ", ".join(f"{g['index']}: {g['name']} {fmt_bytes(g['total_bytes'])}" for g in report["gpus"])
        or "none"
    )
    head += f"\nGPUs{' (pretend)' if report['pretend_gpus'] else ''}: {gpus}"
    parts.append(Text.from_markup(head))
    if (table := breakdown_table(report)) is not None:
        parts.append(table)
        parts.extend(Text(f"• {n}", style="dim") for n in report["breakdown"]["notes"])
    parts.append(checks_table(report))
    if report.get("command") is not None:
        cmd = report["command"]
        text = shlex.join(cmd) if isinstance(cmd, list) else json.dumps(cmd, default=str)
        parts.append(Text.from_markup("[bold]dry-run:[/] ") + Text(text))
    verdict = (
        "[bold green]OK: the recipe can start[/]"
        if report["ok"]
        else "[bold red]FAIL: the recipe would not start[/]"
    )
    parts.append(Text.from_markup(verdict))
    return Group(*parts)


def render(report: ValidationReport) -> RenderableType:
    return render_dict(json.loads(report.to_json()))


def print_report(report: ValidationReport, console: Console | None = None) -> None:
    (console or Console()).print(render(report))


def print_report_dict(report: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(render_dict(report))
