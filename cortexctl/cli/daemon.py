"""Daemon commands: up, down, status, serve."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, err_console, print_json, settings_of
from cortexctl.core import daemon as control
from cortexctl.core.errors import DaemonError

PortOpt = Annotated[int | None, typer.Option("--port", help="Port to listen on (default: CORTEX_PORT or 8080).")]
HostOpt = Annotated[str | None, typer.Option("--host", help="Address to bind (default: CORTEX_HOST or 127.0.0.1).")]


def _apply_overrides(ctx: typer.Context, host: str | None, port: int | None) -> dict[str, str]:
    env: dict[str, str] = {}
    overrides = ctx.find_root().obj.setdefault("overrides", {})
    if host is not None:
        overrides["host"], env["CORTEX_HOST"] = host, host
    if port is not None:
        overrides["port"], env["CORTEX_PORT"] = port, str(port)
    return env


def up(ctx: typer.Context, host: HostOpt = None, port: PortOpt = None, json_out: JsonOpt = False) -> None:
    """Start the daemon in the background, wait until it is ready, print its URL."""
    from cortex_server.services.prepare import prepare_database

    env = _apply_overrides(ctx, host, port)
    settings = settings_of(ctx)
    pid = control.read_pid(settings)
    if pid is not None:
        result = {"status": "already-running", **control.status_dict(control.status(settings))}
        if json_out:
            print_json(result)
        else:
            console.print(f"CORTEX is already running at [bold]{settings.url}[/] (pid {pid}).")
        return
    owner = control.port_owner(settings.host, settings.port)
    if owner is not None:
        raise DaemonError(
            f"Port {settings.port} on {settings.host} is already in use by {owner}.",
            fix=f"Stop that process, or pick another port: `cortexctl up --port {settings.port + 1}`.",
        )
    with err_console.status("Preparing the database (migrations, first-run set-up)…"):
        boot = prepare_database(settings)
    with err_console.status(f"Starting the daemon on {settings.url}…"):
        pid = control.start_detached(settings, env_overrides=env)
        control.wait_ready(settings, pid, timeout_s=settings.ready_timeout_s)
    result = {
        "status": "started",
        "pid": pid,
        "url": settings.url,
        "admin_username": boot.admin_username,
        "admin_password": boot.admin_password,
        "admin_token_file": str(settings.admin_token_file),
        "log_file": str(control.daemon_log_file(settings)),
    }
    if json_out:
        print_json(result)
        return
    console.print(f"[green]CORTEX is running[/] at [bold]{settings.url}[/] (pid {pid})")
    if boot.admin_password:
        console.print(
            f"First admin user: [bold]{boot.admin_username}[/]  password: [bold]{boot.admin_password}[/]\n"
            "  (shown once; it is stored hashed)"
        )
    console.print(f"Local admin token: {settings.admin_token_file} (used by cortexctl)")
    console.print("Create an API key: [bold]cortexctl keys create --name my-app --scope inference[/]")


def down(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Stop the daemon (running models keep running and are re-adopted by the next `up`)."""
    settings = settings_of(ctx)
    pid = control.stop(settings)
    if json_out:
        print_json({"stopped": pid is not None, "pid": pid})
    elif pid is None:
        console.print("CORTEX is not running.")
    else:
        console.print(f"Stopped CORTEX (pid {pid}).")


def status(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Show whether the daemon runs, where, and on which database."""
    st = control.status(settings_of(ctx))
    if json_out:
        print_json(control.status_dict(st))
    else:
        table = Table(show_header=False, box=None)
        table.add_row("state", "[green]running[/]" if st.running else "[yellow]stopped[/]")
        if st.running:
            table.add_row("ready", "yes" if st.ready else "[red]no[/]")
            table.add_row("pid", str(st.pid))
            table.add_row("version", st.version or "?")
        table.add_row("url", st.url)
        table.add_row("database", st.database or "?")
        table.add_row("home", st.home)
        console.print(table)
    if st.running and not st.ready:
        raise typer.Exit(1)


def serve(ctx: typer.Context, host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the daemon in the foreground (for systemd and containers)."""
    from cortex_server.main import serve as run_server

    _apply_overrides(ctx, host, port)
    run_server(settings_of(ctx))


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.command()(serve)
