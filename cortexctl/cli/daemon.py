"""Daemon commands: up, down, status, serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, err_console, print_json, settings_of
from cortexctl.core.errors import DaemonError

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings
    from cortexctl.core.systemd import Unit

PortOpt = Annotated[
    int | None, typer.Option("--port", help="Port to listen on (default: CORTEX_PORT or 8080).")
]
HostOpt = Annotated[
    str | None, typer.Option("--host", help="Address to bind (default: CORTEX_HOST or 127.0.0.1).")
]


def _apply_overrides(ctx: typer.Context, host: str | None, port: int | None) -> dict[str, str]:
    env: dict[str, str] = {}
    overrides = ctx.find_root().obj.setdefault("overrides", {})
    if host is not None:
        overrides["host"], env["CORTEX_HOST"] = host, host
    if port is not None:
        overrides["port"], env["CORTEX_PORT"] = port, str(port)
    return env


def up(
    ctx: typer.Context,
    host: HostOpt = None,
    port: PortOpt = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Also run the demo model (gemma3-270m on llama.cpp).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start the daemon in the background, wait until it is ready, print its URL."""
    from cortex_server.services.prepare import password_shown, prepare_database
    from cortexctl.core import daemon as control  # httpx, psutil: not for --help

    env = _apply_overrides(ctx, host, port)
    settings = settings_of(ctx)
    unit = _managing_unit(settings)
    if unit is not None:
        if env:
            raise DaemonError(
                f"The daemon of {settings.home} runs as the systemd service {unit.path.name}; "
                "--host/--port do not apply to it.",
                fix=f"Set host/port in {settings.config_file} and run `cortexctl down && cortexctl up`.",
            )
        pid = _unit_pid(unit)
    else:
        pid = control.read_pid(settings)
    if pid is not None:
        result: dict[str, object] = {
            "status": "already-running",
            **control.status_dict(control.status(settings)),
        }
        demo_result = run_demo(settings) if demo else None
        if demo_result is not None:
            result["demo"] = demo_result
        if json_out:
            print_json(result)
        else:
            console.print(f"CORTEX is already running at [bold]{settings.url}[/] (pid {pid}).")
            if demo_result is not None:
                _print_demo(settings, demo_result)
        return
    owner = control.port_owner(settings.host, settings.port)
    if owner is not None:
        raise DaemonError(
            f"Port {settings.port} on {settings.host} is already in use by {owner}.",
            fix=f"Stop that process, or pick another port: `cortexctl up --port {settings.port + 1}`.",
        )
    with err_console.status("Preparing the database (migrations, first-run set-up)…"):
        boot = prepare_database(settings)
    if unit is not None:
        pid = _start_unit(settings, unit, demo=demo)
    else:
        with err_console.status(f"Starting the daemon on {settings.url}…"):
            pid = control.start_detached(settings, env_overrides=env)
            control.wait_ready(settings, pid, timeout_s=settings.ready_timeout_s)
    demo_result = run_demo(settings) if demo else None
    result = {
        "demo": demo_result,
        "status": "started",
        "pid": pid,
        "url": settings.url,
        "admin_username": boot.admin_username,
        "admin_password": boot.admin_password,
        "admin_token_file": str(settings.admin_token_file),
        "log_file": str(control.daemon_log_file(settings)),
        "service": unit.path.name if unit is not None else None,
    }
    if json_out:
        print_json(result)
        if boot.admin_password:
            password_shown(settings)
        return
    under = f", systemd service {unit.path.name}" if unit is not None else ""
    console.print(f"[green]CORTEX is running[/] at [bold]{settings.url}[/] (pid {pid}{under})")
    if boot.admin_password:
        console.print(
            f"First admin user: [bold]{boot.admin_username}[/]  password: [bold]{boot.admin_password}[/]\n"
            "  (shown once; it is stored hashed)"
        )
        password_shown(settings)  # only now: a start that failed before this draws a new one
    console.print(f"Local admin token: {settings.admin_token_file} (used by cortexctl)")
    if demo_result is not None:
        _print_demo(settings, demo_result)
    else:
        console.print("Create an API key: [bold]cortexctl keys create --name my-app --scope inference[/]")


def _print_demo(settings: Settings, demo: dict[str, object]) -> None:
    import json

    console.print(
        f"Demo model [bold]{demo['model']}[/] is [green]running[/], served as [bold]{demo['served_name']}[/] "
        f"(engine {demo['engine_url']}).\n"
        f"  see it:     cortexctl model show {demo['model']}\n"
        f'  API model:  "{demo["served_name"]}"',
        highlight=False,
    )
    key = demo.get("api_key") or "$CORTEX_API_KEY"
    if demo.get("api_key"):
        console.print(f"Demo API key (shown once): [bold]{key}[/]")
    auth = f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json'"
    chat = {"model": demo["served_name"], "messages": [{"role": "user", "content": "Hello"}]}
    console.print(
        "Try it (greedy and seeded: the same answer every time):\n"
        f"  curl {settings.url}/v1/completions {auth} -d '{json.dumps(demo['example'])}'\n"
        "Chat with it (a tiny model: expect rambling):\n"
        f"  curl {settings.url}/v1/chat/completions {auth} -d '{json.dumps(chat)}'",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def run_demo(settings: Settings) -> dict[str, object]:
    """Deploy and start the demo recipe, wait until it runs; mint a demo key the first time."""
    from cortexctl.cli.model import wait_for_state
    from cortexctl.core.client import AdminClient
    from cortexctl.core.demo import DEMO_NOTE, DEMO_RECIPE, demo_example, install_demo_model
    from cortexctl.core.errors import NotFound
    from cortexctl.core.shipped import find_shipped_recipe

    err_console.print(f"Starting the demo model {DEMO_RECIPE}. Note: {DEMO_NOTE}", highlight=False)
    install_demo_model(settings)
    recipe_file = find_shipped_recipe(settings, DEMO_RECIPE)
    client = AdminClient(settings)
    try:
        client.post(f"/admin/models/{DEMO_RECIPE}/start")
    except NotFound:
        client.post(
            "/admin/models", {"yaml": recipe_file.read_text(), "source": str(recipe_file), "start": True}
        )
    model = wait_for_state(client, DEMO_RECIPE, timeout_s=settings.model_load_timeout_s)
    api_key = None
    if not any(k["name"] == "demo" for k in client.get("/admin/keys")):
        api_key = client.post("/admin/keys", {"name": "demo", "scopes": ["inference", "models:read"]})["key"]
    port = next(r["port"] for r in model["replicas"] if r["state"] == "running")
    return {
        "model": model["name"],
        "served_name": model["served_name"],
        "state": model["state"],
        "engine_url": f"http://127.0.0.1:{port}",
        "api_key": api_key,
        "note": DEMO_NOTE,
        "example": demo_example(model["served_name"]),
    }


def down(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Stop the daemon (running models keep running and are re-adopted by the next `up`)."""
    from cortexctl.core import daemon as control  # httpx, psutil: not for --help

    settings = settings_of(ctx)
    unit = _managing_unit(settings)
    if unit is not None:
        from cortexctl.core.systemd import systemctl

        pid = _unit_pid(unit)
        systemctl("stop", unit.path.name)  # KillMode=process: engines keep running, as below
    else:
        pid = control.stop(settings)
    if json_out:
        print_json({"stopped": pid is not None, "pid": pid})
    elif pid is None:
        console.print("CORTEX is not running.")
    else:
        console.print(f"Stopped CORTEX (pid {pid}).")


def status(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Show whether the daemon runs, where, and on which database."""
    from cortexctl.core import daemon as control  # httpx, psutil: not for --help

    settings = settings_of(ctx)
    unit = _managing_unit(settings)
    if unit is not None:
        st = control.status(settings, pid=_unit_pid(unit), service=unit.path.name)
    else:
        st = control.status(settings)
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
        if st.service:
            table.add_row("service", f"{st.service} (systemd)")
        table.add_row("database", st.database or "?")
        table.add_row("home", st.home)
        console.print(table)
    if st.running and not st.ready:
        raise typer.Exit(1)


def _managing_unit(settings: Settings) -> Unit | None:
    """The systemd unit that runs this home's daemon, if `cortexctl service install` made one."""
    from cortexctl.core.systemd import managing_unit

    return managing_unit(settings.home)


def _unit_pid(unit: Unit) -> int | None:
    from cortexctl.core.systemd import main_pid

    return main_pid(unit)


def _start_unit(settings: Settings, unit: Unit, *, demo: bool) -> int:
    """Start the service after root prepared its home; hand the home to the service user first."""
    import os

    from cortexctl.core import daemon as control
    from cortexctl.core.systemd import chown_tree, systemctl

    if os.geteuid() != 0:
        raise DaemonError(
            f"The daemon of {settings.home} is the systemd service {unit.path.name}; starting it needs root.",
            fix=f"Run `sudo cortexctl up`, or `sudo systemctl start {unit.path.name}`.",
        )
    if demo:
        from cortexctl.core.demo import install_demo_model

        install_demo_model(settings)  # as root, before the home is handed over
    if unit.user != "root":
        chown_tree(settings.home, unit.user)
    with err_console.status(f"Starting {unit.path.name} on {settings.url}…"):
        systemctl("start", unit.path.name)
        pid = _unit_pid(unit)
        if pid is None:
            raise DaemonError(
                f"{unit.path.name} did not start.", fix=f"See `journalctl -u {unit.path.name}`."
            )
        try:
            control.wait_ready(settings, pid, timeout_s=settings.ready_timeout_s)
        except DaemonError as exc:
            raise DaemonError(
                exc.message, fix=f"See `journalctl -u {unit.path.name}` and {settings.logs_dir}."
            ) from None
    return pid


WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Gateway processes on the one port (default: CORTEX_WORKERS, else the core count up to 8 "
        "with CORTEX_REDIS_URL and PostgreSQL, else 1; more than one needs Redis). One supervises engines.",
    ),
]


def serve(ctx: typer.Context, host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = None) -> None:
    """Run the daemon in the foreground (for systemd and containers)."""
    from cortex_server.main import serve as run_server

    _apply_overrides(ctx, host, port)
    run_server(settings_of(ctx), workers=workers)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.command()(serve)
