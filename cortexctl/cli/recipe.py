"""`cortexctl recipe`: validate recipes offline; apply, list, show and export them through the daemon."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, err_console, print_json, settings_of
from cortexctl.cli.tables import Col, WideOpt, fit_table, print_table
from cortexctl.core.client import AdminClient
from cortexctl.core.errors import Conflict, CortexError, RecipeError

if TYPE_CHECKING:  # the recipe code (pydantic, yaml) is imported by the commands that use it
    from cortexctl.recipes.loader import RecipeReport

app = typer.Typer(help="Check, register and export model recipes (YAML).", no_args_is_help=True)

FilesArg = Annotated[list[Path], typer.Argument(help="Recipe YAML files.", show_default=False)]
FitOpt = Annotated[
    bool,
    typer.Option(
        "--fit",
        help="Also run the preflight here: model file and checksum, VRAM fit, the exact command. "
        "Implied by --gpus, --gpu-profile and --vram.",
    ),
]
GpusOpt = Annotated[
    str | None, typer.Option("--gpus", help="Fit check for these GPUs instead of spec.gpus: 0,1 | all.")
]
GpuProfileOpt = Annotated[
    str | None,
    typer.Option("--gpu-profile", help="Fit check for GPUs this host lacks, e.g. a100-80g, 2xl4-24g."),
]
VramOpt = Annotated[
    str | None, typer.Option("--vram", help="Fit check for one generic GPU of this size, e.g. 24GiB.")
]


def _check_all(ctx: typer.Context, files: list[Path]) -> list[RecipeReport]:
    from cortexctl.recipes.loader import check_recipe_file, duplicate_problems
    from cortexctl.recipes.paths import store_roots

    roots = store_roots(settings_of(ctx))  # files a recipe names must be in the model store
    reports = [check_recipe_file(f, roots=roots) for f in files]
    for p in duplicate_problems(reports):
        for r in reports:
            if r.source == p.source:
                r.problems.append(p)
    return reports


@app.command("validate")
def validate(
    ctx: typer.Context,
    files: FilesArg,
    fit: FitOpt = False,
    gpus: GpusOpt = None,
    gpu_profile: GpuProfileOpt = None,
    vram: VramOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check recipes without the daemon: schema, engine flags, cross-field rules. Exit 1 on any error.

    With --fit (or a GPU option) each valid recipe also gets the preflight a start
    would run: model present, checksum, VRAM fit, ports, the exact command.
    """
    from cortexctl.recipes.flags import engine_version

    reports = _check_all(ctx, files)
    fit_reports: dict[str, Any] = {}
    if fit or gpus or gpu_profile or vram:
        fit_reports = _preflight_all(ctx, reports, gpus=gpus, gpu_profile=gpu_profile, vram=vram)
    if json_out:
        print_json([_report_json(r) | _fit_json(fit_reports.get(r.source)) for r in reports])
    else:
        for r in reports:
            if r.ok and r.recipe is not None:
                spec = r.recipe.spec
                console.print(
                    f"[green]OK[/]   {escape(r.source)}  ({r.recipe.name}: {spec.engine} "
                    f"{engine_version(spec.engine)}, served as {escape(spec.served_name)})",
                    highlight=False,
                    soft_wrap=True,
                )
            else:
                console.print(f"[red]FAIL[/] {escape(r.source)}", highlight=False, soft_wrap=True)
                for p in r.problems:
                    console.print(f"  {escape(str(p))}", highlight=False, soft_wrap=True)
            if r.source in fit_reports:
                from cortexctl.validation.render import print_report

                print_report(fit_reports[r.source], console)
    bad = sum(not r.ok or (r.source in fit_reports and not fit_reports[r.source].ok) for r in reports)
    if bad:
        if not json_out:
            err_console.print(f"{bad} of {len(reports)} recipe(s) invalid.", highlight=False)
        raise typer.Exit(1)


def _preflight_all(
    ctx: typer.Context,
    reports: list[RecipeReport],
    *,
    gpus: str | None,
    gpu_profile: str | None,
    vram: str | None,
) -> dict[str, Any]:
    """The validation package's preflight for each recipe that passed the static checks."""
    try:
        from cortexctl.core.preflight import preflight
    except ImportError:  # a build without the engines/validation packages
        raise CortexError("The fit check is not part of this build.", fix="Run without --fit.") from None
    settings = settings_of(ctx)
    return {
        r.source: preflight(r.recipe, settings=settings, select_gpus=gpus, gpu_profile=gpu_profile, vram=vram)
        for r in reports
        if r.ok and r.recipe is not None
    }


def _fit_json(report: Any) -> dict[str, Any]:
    return {} if report is None else {"preflight": report.to_dict()}


def _report_json(r: RecipeReport) -> dict[str, Any]:
    out: dict[str, Any] = {"file": r.source, "ok": r.ok, "errors": [p.as_dict() for p in r.problems]}
    if r.recipe is not None:
        out |= {
            "name": r.recipe.name,
            "engine": r.recipe.spec.engine,
            "served_name": r.recipe.spec.served_name,
        }
    return out


@app.command("apply")
def apply(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Option("-f", "--file", help="Recipe file; repeat for several.")],
    json_out: JsonOpt = False,
) -> None:
    """Register recipes with the daemon, or update those that exist. Nothing is sent if any is invalid."""
    from cortexctl.recipes.loader import read_recipe_text

    reports = _check_all(ctx, files)
    problems = [p for r in reports for p in r.problems]
    if problems:
        raise RecipeError(
            "\n".join(map(str, problems)), fix="Fix these first; `cortexctl recipe validate` rechecks."
        )
    client = AdminClient(settings_of(ctx))
    results = []
    for path, report in zip(files, reports, strict=True):
        assert report.recipe is not None
        body = {"yaml": read_recipe_text(path), "source": str(path.resolve())}
        try:
            row = client.post("/admin/recipes", body)
            action = "created"
        except Conflict:
            row = client.put(f"/admin/recipes/{report.recipe.name}", body)
            action = "updated"
        results.append({"action": action, "name": row["name"], "file": str(path)})
        if not json_out:
            console.print(f"recipe [bold]{escape(row['name'])}[/] {action}", highlight=False)
    if json_out:
        print_json(results)


@app.command("list")
def list_(ctx: typer.Context, wide: WideOpt = False, json_out: JsonOpt = False) -> None:
    """List registered recipes."""
    rows = AdminClient(settings_of(ctx)).get("/admin/recipes")
    if json_out:
        print_json(rows)
        return
    columns = [Col("name"), Col("served name"), Col("engine", 2), Col("updated", 3), Col("source", 4)]
    table_rows = [
        [r["name"], r["served_name"], r["engine"], r["updated_at"][:19], r["source"] or ""] for r in rows
    ]
    print_table(console, fit_table(console, columns, table_rows, wide=wide), wide=wide)


@app.command("show")
def show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Recipe name.")], json_out: JsonOpt = False
) -> None:
    """Show a registered recipe: a summary and its YAML."""
    from cortexctl.engines.registry import engine_names, get_engine

    row = AdminClient(settings_of(ctx)).get(f"/admin/recipes/{name}")
    if json_out:
        print_json(row)
        return
    if row["recipe"] is None:
        console.print(f"[bold]{escape(row['name'])}[/] [red]no longer validates:[/]", highlight=False)
        for line in row["problems"]:
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        console.print(Syntax(row["yaml"], "yaml", line_numbers=True, word_wrap=True))
        raise typer.Exit(1)
    spec = row["recipe"]["spec"]
    args = spec.get("args") or {}
    console.print(f"[bold]{escape(row['name'])}[/]  {escape(row['description'])}", highlight=False)
    version = get_engine(spec["engine"]).version if spec["engine"] in engine_names() else "?"
    facts = {
        "engine": f"{spec['engine']} {version}",
        "served name": spec["served_name"],
        "model": spec["model"]["path"]
        + (f"  (sha256 {spec['model']['sha256'][:12]}…)" if spec["model"]["sha256"] else ""),
        "replicas": str(spec["replicas"]),
        "gpus": str(spec["gpus"]),
        "runtime": spec.get("runtime") or "host default",
        "extra args": " ".join(args.get("extra_args") or []) or "-",
        "source": row["source"] or "-",
        "updated": row["updated_at"][:19],
    }
    for key, value in facts.items():
        console.print(f"  {key:<12} {escape(value)}", highlight=False)
    console.print(Syntax(row["yaml"], "yaml", line_numbers=True, word_wrap=True))


@app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Recipe name.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Print or save a recipe's YAML exactly as it was applied."""
    text: str = AdminClient(settings_of(ctx)).get(f"/admin/recipes/{name}")["yaml"]
    data = text.encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        err_console.print(f"wrote {output} ({len(data)} bytes)", highlight=False)


@app.command("flags")
def flags(
    engine: Annotated[str, typer.Argument(help="llamacpp or vllm.")],
    match: Annotated[str | None, typer.Argument(help="Only flags containing this text.")] = None,
    templates: Annotated[
        bool, typer.Option("--templates", help="List llama.cpp's built-in chat templates.")
    ] = False,
    allowed: Annotated[
        bool, typer.Option("--allowed", help="Only the flags a recipe's extra_args may set (the allow-list).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """The flags the pinned engine version has, and which of them a recipe may set (column `allowed`)."""
    from cortexctl.recipes.flags import accepted_flags, engine_version, flag_data, flags_file

    version = engine_version(engine)
    if templates:
        names = flag_data(engine).get("chat_templates", [])
        print_json(names) if json_out else console.print(", ".join(names), highlight=False)
        return
    seen: dict[tuple[str, ...], Any] = {}
    for info in accepted_flags(engine).values():
        if (match is None or any(match in n for n in info.names)) and (info.allowed or not allowed):
            seen[info.names] = info
    if json_out:
        print_json(
            [
                {"names": list(i.names), "nargs": i.nargs, "choices": i.choices, "allowed": i.allowed}
                for i in seen.values()
            ]
        )
        return
    table = Table(
        "flag",
        "value",
        "allowed",
        title=f"{engine} {version}: {len(seen)} flags (data: {flags_file(engine).name})",
    )
    for info in sorted(seen.values(), key=lambda i: i.canonical):
        value = (
            ", ".join(info.choices)
            if info.choices
            else (info.value_hint or ("VALUE" if info.takes_value else ""))
        )
        table.add_row(", ".join(info.names), value, info.allowed or "no (refused in recipes)")
    console.print(table)
