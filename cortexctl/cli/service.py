"""`cortexctl service`: install the daemon as a systemd service (what `install.sh --systemd` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cortexctl.cli.common import JsonOpt, console, err_console, print_json

app = typer.Typer(
    help="Run the daemon as a systemd service (dedicated user, restart on failure, hardening).",
    no_args_is_help=True,
)

UserOpt = Annotated[str, typer.Option("--user", help="System user the daemon runs as (created if missing).")]
HomeOpt = Annotated[Path, typer.Option("--home", help="Data directory of the service (CORTEX_HOME).")]
UnitOpt = Annotated[
    Path | None,
    typer.Option("--unit-file", help="Where to write the unit (default /etc/systemd/system/cortex.service)."),
]


def _require_root(action: str) -> None:
    import os

    from cortexctl.core.errors import DaemonError

    if os.geteuid() != 0:
        raise DaemonError(f"Only root can {action}.", fix="Rerun it with sudo.")


@app.command()
def install(
    user: UserOpt = "cortex",
    home: HomeOpt = Path("/var/lib/cortex"),
    unit_file: UnitOpt = None,
    enable: Annotated[bool, typer.Option("--enable/--no-enable", help="Enable the unit at boot.")] = True,
    print_only: Annotated[bool, typer.Option("--print", help="Print the unit; change nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write the cortex.service unit, create its user and home, enable it (start it with `cortexctl up`)."""
    from cortexctl.core import service_install

    plan = service_install.plan(user=user, home=home.expanduser().absolute(), unit_file=unit_file)
    if print_only:
        typer.echo(plan.unit_text, nl=False)
        return
    _require_root("install the systemd service")
    result = service_install.apply(plan, enable=enable)
    if json_out:
        print_json(result)
        return
    console.print(f"Wrote [bold]{result['unit_file']}[/] (runs as {user}, home {result['home']}).")
    warnings = result["warnings"]
    assert isinstance(warnings, list)
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print("Start it: [bold]cortexctl up[/]   (as root; up/down/status now drive the service)")


@app.command()
def uninstall(unit_file: UnitOpt = None, json_out: JsonOpt = False) -> None:
    """Stop and disable the service and remove its unit (the home and the user stay)."""
    from cortexctl.core import service_install

    _require_root("uninstall the systemd service")
    result = service_install.remove(unit_file)
    if json_out:
        print_json(result)
    elif result["removed"]:
        console.print(f"Removed {result['unit_file']}; the data in {result['home']} is kept.")
    else:
        console.print(f"No CORTEX unit at {result['unit_file']}.")
