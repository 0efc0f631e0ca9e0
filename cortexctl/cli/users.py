"""`cortexctl users`: console users and their roles (owner, admin, member, viewer)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from cortexctl.cli.access_common import OrgOpt, org_query
from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.cli.tables import Col, WideOpt, fit_table, print_table
from cortexctl.core.client import AdminClient

app = typer.Typer(help="Create, list, update, revoke and delete console users.", no_args_is_help=True)
UserArg = Annotated[str, typer.Argument(help="Username or id.")]
RoleOpt = Annotated[str | None, typer.Option("--role", help="owner, admin, member or viewer.")]


def _client(ctx: typer.Context) -> AdminClient:
    return AdminClient(settings_of(ctx))


def _print(rows: list[dict[str, Any]], *, wide: bool = False) -> None:
    columns = [Col("id"), Col("username"), Col("role"), Col("state"), Col("org", 2), Col("created", 3)]
    table_rows = [
        [
            str(r["id"]),
            r["username"],
            r["role"],
            "active" if r["is_active"] else "[red]disabled[/]",
            str(r["org_id"]),
            r["created_at"][:19],
        ]
        for r in rows
    ]
    print_table(console, fit_table(console, columns, table_rows, wide=wide), wide=wide)


@app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name (unique).")],
    role: RoleOpt = "member",
    org: OrgOpt = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (default: generate one).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a user. A generated password is printed once."""
    body: dict[str, Any] = {"username": username, "role": role}
    if password_stdin:
        body["password"] = typer.get_text_stream("stdin").readline().rstrip("\n")
    if org:
        body["org"] = org
    row = _client(ctx).post("/admin/users", body)
    if json_out:
        print_json(row)
        return
    console.print(f"Created user [bold]{row['username']}[/] (id {row['id']}, role {row['role']}).")
    if row.get("password"):
        console.print(f"  password: {row['password']}", highlight=False)
        console.print("[yellow]Copy it now: it will not be shown again.[/]")


@app.command("list")
def list_(ctx: typer.Context, org: OrgOpt = None, wide: WideOpt = False, json_out: JsonOpt = False) -> None:
    """List console users with their roles."""
    rows = _client(ctx).get("/admin/users" + org_query(org))
    print_json(rows) if json_out else _print(rows, wide=wide)


@app.command("show")
def show(ctx: typer.Context, user: UserArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """Show one user."""
    row = _client(ctx).get(f"/admin/users/{quote(user)}" + org_query(org))
    print_json(row) if json_out else _print([row], wide=True)


def _patch(ctx: typer.Context, user: str, org: str | None, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _client(ctx).patch(f"/admin/users/{quote(user)}" + org_query(org), body)
    return result


@app.command("update")
def update(
    ctx: typer.Context,
    user: UserArg,
    role: RoleOpt = None,
    active: Annotated[
        bool | None, typer.Option("--active/--disabled", help="Enable or disable the login.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Set a new password read from stdin.")
    ] = False,
    org: OrgOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change a user's role, state or password; options left out stay as they are."""
    body: dict[str, Any] = {}
    if role:
        body["role"] = role
    if active is not None:
        body["is_active"] = active
    if password_stdin:
        body["password"] = typer.get_text_stream("stdin").readline().rstrip("\n")
    if not body:
        raise typer.BadParameter("Give at least one option to change (see --help).")
    row = _patch(ctx, user, org, body)
    print_json(row) if json_out else console.print(f"Updated user [bold]{row['username']}[/].")


@app.command("revoke")
def revoke(ctx: typer.Context, user: UserArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """Disable a user's login at once (their sessions end within seconds)."""
    row = _patch(ctx, user, org, {"is_active": False})
    print_json(row) if json_out else console.print(f"Disabled user [bold]{row['username']}[/].")


@app.command("delete")
def delete(ctx: typer.Context, user: UserArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """Delete a user (their keys stay with the organization)."""
    _client(ctx).delete(f"/admin/users/{quote(user)}" + org_query(org))
    print_json({"deleted": user}) if json_out else console.print(f"Deleted user [bold]{user}[/].")


@app.command("end-sessions")
def end_sessions(ctx: typer.Context, user: UserArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """End every browser session of a user at once (they must log in again)."""
    _client(ctx).delete(f"/admin/users/{quote(user)}/sessions" + org_query(org))
    if json_out:
        print_json({"sessions_ended": user})
    else:
        console.print(f"Ended every session of [bold]{user}[/].")
