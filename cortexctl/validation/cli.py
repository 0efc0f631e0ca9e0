"""CLI pieces for `cortexctl recipe validate` (the command itself lives in cortexctl/cli/recipe.py).

@app.command("validate")
def validate_cmd(ctx: typer.Context, file: Path, gpus: GpusOpt = None, gpu_profile: GpuProfileOpt = None,
                 vram: VramOpt = None, as_json: JsonOpt = False) -> None:
    recipe = load_recipe_file(file)
    report = validate(recipe, settings=settings_of(ctx), select_gpus=gpus, gpu_profile=gpu_profile,
                      vram=vram, command=<the engine's dry-run argv or container spec>)
    emit_report(report, as_json=as_json)
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from cortexctl.validation.gpus import GPU_PROFILES
from cortexctl.validation.render import print_report
from cortexctl.validation.report import ValidationReport

GpusOpt = Annotated[
    str | None, typer.Option("--gpus", help="GPUs to validate for, overriding spec.gpus: 0,1 | all | none.")
]
GpuProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--gpu-profile",
        help="Plan for GPUs this host lacks: " + ", ".join(GPU_PROFILES) + " (count prefix: 2xa100-80g).",
    ),
]
VramOpt = Annotated[
    str | None, typer.Option("--vram", help="Plan for a generic GPU of this size, e.g. 24GiB.")
]


def emit_report(report: ValidationReport, *, as_json: bool, console: Console | None = None) -> None:
    """Print the report (rich or JSON); exit 1 when a check failed, so scripts can gate on it."""
    if as_json:
        typer.echo(report.to_json())
    else:
        print_report(report, console)
    if not report.ok:
        raise typer.Exit(1)
