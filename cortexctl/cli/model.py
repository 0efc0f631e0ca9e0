"""`cortexctl model`: deploy recipes and drive the model lifecycle through the daemon."""

from __future__ import annotations

import difflib
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from cortexctl.cli.common import JsonOpt, console, err_console, print_json, settings_of
from cortexctl.cli.tables import Col, WideOpt, fit_table, print_table
from cortexctl.core.client import AdminClient
from cortexctl.core.errors import Conflict, EngineError, NotFound

app = typer.Typer(help="Deploy recipes as models; start, stop, inspect them.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Model name or its served name (see `cortexctl model list`).")]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait until the model is running (or failed).")
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait with --wait.")]

_STATE_STYLE = {
    "running": "green",
    "failed": "bold red",
    "stopped": "dim",
    "loading": "yellow",
    "starting": "yellow",
}


def find_model(client: AdminClient, name: str) -> dict[str, Any]:
    """The model called `name`, or else the one served as `name` (what API clients know it by)."""
    try:
        found: dict[str, Any] = client.get(f"/admin/models/{quote(name, safe='')}")
        return found
    except NotFound:
        pass
    models: list[dict[str, Any]] = client.get("/admin/models")
    matches = [m for m in models if m["served_name"] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(sorted(m["name"] for m in matches))
        raise Conflict(
            f"Several models are served as '{name}': {names}.",
            fix=f"Name one of them, e.g. `cortexctl model show {matches[0]['name']}`.",
        )
    known = sorted({m["name"] for m in models} | {m["served_name"] for m in models})
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise NotFound(
        f"No model is named or served as '{name}'.{hint}", fix="List the models with `cortexctl model list`."
    )


def model_name(client: AdminClient, name: str) -> str:
    return str(find_model(client, name)["name"])


def _state(state: str) -> str:
    return f"[{_STATE_STYLE.get(state, 'white')}]{state}[/]"


def wait_for_state(client: AdminClient, name: str, *, timeout_s: float) -> dict[str, Any]:
    """Poll until running or failed, with a live status line. Raises EngineError on failure/timeout."""
    deadline = time.monotonic() + timeout_s
    start = time.monotonic()
    with err_console.status(f"Starting {name}…") as status:
        while True:
            model: dict[str, Any] = client.get(f"/admin/models/{name}")
            elapsed = time.monotonic() - start
            status.update(f"{name}: {model['state']} — {model['state_reason'] or ''} ({elapsed:.0f}s)")
            if model["state"] == "running":
                return model
            if model["state"] == "failed" or model["desired_state"] == "stopped":
                raise EngineError(_failure_text(model), fix=(model.get("diagnosis") or {}).get("fix"))
            if time.monotonic() > deadline:
                raise EngineError(
                    f"{name} is still {model['state']} after {timeout_s:.0f}s.",
                    fix=f"Watch it with `cortexctl model show {name}` or `cortexctl model logs {name}`.",
                )
            time.sleep(0.5)


def _failure_text(model: dict[str, Any]) -> str:
    diag = model.get("diagnosis") or {}
    lines = [f"Model {model['name']} failed: {diag.get('summary') or model['state_reason']}"]
    lines += [f"  | {line}" for line in diag.get("log_lines", [])[-8:]]
    return "\n".join(lines)


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("-f", "--file", help="Recipe YAML file.", exists=True, dir_okay=False)
    ],
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: the recipe name).")] = None,
    start: Annotated[bool, typer.Option("--start", help="Start it right away.")] = False,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 900,
    json_out: JsonOpt = False,
) -> None:
    """Register a recipe file and deploy it as a model."""
    from cortexctl.recipes.loader import load_recipe_file
    from cortexctl.recipes.paths import store_roots

    # same validation as `recipe validate`, before anything reaches the daemon
    load_recipe_file(file, roots=store_roots(settings_of(ctx)))
    client = AdminClient(settings_of(ctx))
    body = {"yaml": file.read_text(), "source": str(file.resolve()), "name": name, "start": start or wait}
    model = client.post("/admin/models", body)
    if wait:
        model = wait_for_state(client, model["name"], timeout_s=timeout)
    if json_out:
        print_json(model)
    else:
        console.print(f"Model [bold]{model['name']}[/] ({model['served_name']}): {_state(model['state'])}")


@app.command("list")
def list_(ctx: typer.Context, wide: WideOpt = False, json_out: JsonOpt = False) -> None:
    """List models with their state, runtime and where they run."""
    rows = AdminClient(settings_of(ctx)).get("/admin/models")
    if json_out:
        print_json(rows)
        return
    columns = [
        Col("name"),
        Col("served name"),
        Col("state", drop_order=1),  # the last to go: names must stay whole
        Col("ready", drop_order=2),
        Col("engine", drop_order=3),
        Col("runtime", drop_order=4),
        Col("ports", drop_order=5),
        Col("reason", drop_order=6),  # `model show NAME` has it in full
    ]
    table_rows = []
    for m in rows:
        ready = sum(1 for r in m["replicas"] if r["state"] == "running")
        table_rows.append(
            [
                m["name"],
                m["served_name"],
                _state(m["state"]),
                f"{ready}/{len(m['replicas'])}",
                m["engine"],
                m["runtime"] or "-",
                ",".join(str(r["port"]) for r in m["replicas"] if r["port"]) or "-",
                m["state_reason"] or "",
            ]
        )
    print_table(console, fit_table(console, columns, table_rows, wide=wide), wide=wide)


@app.command("show")
def show(ctx: typer.Context, name: NameArg, json_out: JsonOpt = False) -> None:
    """Show one model: state, replicas, diagnosis."""
    m = find_model(AdminClient(settings_of(ctx)), name)
    if json_out:
        print_json(m)
        return
    console.print(f"[bold]{m['name']}[/]  served as [bold]{m['served_name']}[/]  engine {m['engine']}")
    console.print(f"state {_state(m['state'])} (desired {m['desired_state']}) — {m['state_reason'] or ''}")
    columns = [
        Col("replica"),
        Col("state"),
        Col("port", drop_order=2),
        Col("runtime", drop_order=3),
        Col("pid / container", drop_order=4),
        Col("restarts", drop_order=5),
        Col("reason", drop_order=1),  # wraps rather than being cut; dropped only if names would be
    ]
    rows = [
        [
            str(r["replica_index"]),
            _state(r["state"]),
            str(r["port"] or "-"),
            r["runtime"] or "-",
            str(r["pid"] or (r["container_id"] or "-")[:12]),
            str(r["restart_count"]),
            r["state_reason"] or "",
        ]
        for r in m["replicas"]
    ]
    console.print(fit_table(console, columns, rows))
    if m["diagnosis"]:
        d = m["diagnosis"]
        console.print(f"[bold red]diagnosis[/] ({d['rule']}): {d['summary']}\n[bold]fix:[/] {d['fix']}")
        for line in d.get("log_lines", [])[-8:]:
            console.print(f"  | {line}", highlight=False, markup=False)
    _print_crashes(m.get("crashes"))


def _print_crashes(crashes: dict[str, Any] | None) -> None:
    """The crash history since the model was last started by hand (kept across daemon restarts)."""
    if not crashes:
        return
    last = crashes.get("last_crash") or {}
    how = f"signal {last['signal']}" if last.get("signal") else f"exit code {crashes.get('last_exit_code')}"
    console.print(
        f"[bold yellow]crashes[/]: {crashes['restart_count']} since the last start by hand; "
        f"last at {last.get('at', '?')} ({how})"
    )
    if last:
        console.print(f"  last crash ({last.get('rule')}): {last.get('summary')}")
        console.print(f"  [bold]fix:[/] {last.get('fix')}")
        for line in (last.get("log_lines") or [])[-8:]:
            console.print(f"  | {line}", highlight=False, markup=False)


def _lifecycle(
    ctx: typer.Context,
    name: str,
    action: str,
    wait: bool,
    timeout: float,
    json_out: bool,
    force: bool = False,
) -> None:
    client = AdminClient(settings_of(ctx))
    name = model_name(client, name)
    model = client.post(f"/admin/models/{name}/{action}" + ("?force=true" if force else ""))
    if wait and action != "stop":
        model = wait_for_state(client, name, timeout_s=timeout)
    if json_out:
        print_json(model)
    else:
        console.print(f"{name}: {_state(model['state'])}")


@app.command("start")
def start(
    ctx: typer.Context,
    name: NameArg,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 900,
    force: Annotated[bool, typer.Option("--force", help="Start even if the preflight check fails.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start a model after the preflight check (with --wait: until it is running)."""
    _lifecycle(ctx, name, "start", wait, timeout, json_out, force=force)


@app.command("validate")
def validate(
    ctx: typer.Context,
    name: NameArg,
    gpus: Annotated[str | None, typer.Option("--gpus", help="GPU selection override, e.g. 0,1.")] = None,
    gpu_profile: Annotated[
        str | None, typer.Option("--gpu-profile", help="Pretend hardware, e.g. a100-80g.")
    ] = None,
    vram: Annotated[
        str | None, typer.Option("--vram", help="Pretend one GPU of this size, e.g. 24GiB.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run the preflight check of a deployed model on the daemon's host (exit 1 on any FAIL)."""
    from cortexctl.validation.render import print_report_dict

    params = {k: v for k, v in {"gpus": gpus, "gpu_profile": gpu_profile, "vram": vram}.items() if v}
    query = "&".join(f"{k}={v}" for k, v in params.items())
    client = AdminClient(settings_of(ctx))
    name = model_name(client, name)
    report = client.post(f"/admin/models/{name}/validate" + (f"?{query}" if query else ""))
    if json_out:
        print_json(report)
    else:
        print_report_dict(report, console)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("stop")
def stop(ctx: typer.Context, name: NameArg, json_out: JsonOpt = False) -> None:
    """Stop a model."""
    _lifecycle(ctx, name, "stop", False, 0, json_out)


@app.command("restart")
def restart(
    ctx: typer.Context,
    name: NameArg,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 900,
    json_out: JsonOpt = False,
) -> None:
    """Restart a model's engines."""
    _lifecycle(ctx, name, "restart", wait, timeout, json_out)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a stopped model (its recipe stays registered)."""
    client = AdminClient(settings_of(ctx))
    name = model_name(client, name)
    client.delete(f"/admin/models/{name}")
    console.print(f"Deleted model {name}.")


@app.command("logs")
def logs(
    ctx: typer.Context,
    name: NameArg,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines.")] = False,
    diagnose: Annotated[bool, typer.Option("--diagnose", help="Print the diagnosis and its fix.")] = False,
    replica: Annotated[int, typer.Option("--replica", min=0, help="Replica index.")] = 0,
    tail: Annotated[int, typer.Option("--tail", min=1, help="Lines to show.")] = 200,
) -> None:
    """Print an engine's log (and with --diagnose, what went wrong and how to fix it)."""
    client = AdminClient(settings_of(ctx))
    name = model_name(client, name)
    out = client.get(f"/admin/models/{name}/logs", replica=replica, tail=tail)
    typer.echo(out["logs"])
    if diagnose:
        d = out["diagnosis"]
        if d:
            console.print(f"[bold red]diagnosis[/] ({d['rule']}): {d['summary']}\n[bold]fix:[/] {d['fix']}")
        elif not out.get("crashes"):
            console.print("[green]No problem diagnosed.[/]")
        _print_crashes(out.get("crashes"))
    last = out["logs"].splitlines()[-1:] or [""]
    while follow:
        time.sleep(1.0)
        lines = client.get(f"/admin/models/{name}/logs", replica=replica, tail=tail)["logs"].splitlines()
        # print what follows the last line we printed (the whole window if it scrolled past it)
        cut = max((i + 1 for i, line in enumerate(lines) if line == last[0]), default=0)
        for line in lines[cut:]:
            typer.echo(line)
        last = lines[-1:] or last
