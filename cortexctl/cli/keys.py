"""`cortexctl keys`: API keys through the daemon's admin API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.core.client import AdminClient

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name for the key (unique in its org).")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="Scope to grant; repeat for several (e.g. inference, admin).")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Create a key. It is printed once and stored only as a hash."""
    created = AdminClient(settings_of(ctx)).post("/admin/keys", {"name": name, "scopes": scope})
    if json_out:
        print_json(created)
        return
    console.print(f"Created key [bold]{created['name']}[/] (id {created['id']}, scopes {', '.join(created['scopes'])})")
    console.print(f"  {created['key']}")
    console.print("[yellow]Copy it now: it will not be shown again.[/]")


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List keys (never their secret)."""
    rows = AdminClient(settings_of(ctx)).get("/admin/keys")
    if json_out:
        print_json(rows)
        return
    table = Table("id", "name", "prefix", "scopes", "created", "state")
    for r in rows:
        state = "[red]revoked[/]" if r["revoked_at"] else "active"
        table.add_row(str(r["id"]), r["name"], r["prefix"] + "…", ", ".join(r["scopes"]), r["created_at"][:19], state)
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Key name or id.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a key; every daemon refuses it within seconds."""
    row = AdminClient(settings_of(ctx)).post(f"/admin/keys/{key}/revoke")
    if json_out:
        print_json(row)
    else:
        console.print(f"Revoked key [bold]{row['name']}[/] (id {row['id']}).")
