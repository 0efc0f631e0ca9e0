"""`cortexctl keys`: API keys through the daemon's admin API."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from cortexctl.cli.access_common import (
    AllowIpOpt,
    ConcOpt,
    OrgOpt,
    RpmOpt,
    TpmOpt,
    limits_body,
    limits_text,
    org_query,
)
from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.cli.tables import Col, WideOpt, fit_table, print_table
from cortexctl.core.client import AdminClient
from cortexctl.core.durations import expiry_from_now

app = typer.Typer(help="Create, list, update, revoke and delete API keys.", no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(help="Key name or id.")]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--models", help="Allowed served model name; repeat for several (default: all)."),
]
ExpiresOpt = Annotated[str | None, typer.Option("--expires", help="Lifetime from now, e.g. 30d, 12h, 2w.")]


def _client(ctx: typer.Context) -> AdminClient:
    return AdminClient(settings_of(ctx))


def _show(row: dict[str, Any]) -> None:
    table = Table(show_header=False)
    for field in (
        "id",
        "name",
        "prefix",
        "org_id",
        "scopes",
        "allowed_models",
        "allowed_ips",
        "rpm_limit",
        "tpm_limit",
        "max_concurrent",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created_at",
    ):
        value = row.get(field)
        table.add_row(
            field, ", ".join(value) if isinstance(value, list) else str(value if value is not None else "-")
        )
    console.print(table)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name for the key (unique in its org).")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="Scope to grant; repeat for several (e.g. inference, admin).")
    ],
    org: OrgOpt = None,
    models: ModelsOpt = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrent: ConcOpt = None,
    allow_ip: AllowIpOpt = None,
    expires: ExpiresOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a key. It is printed once and stored only as a hash."""
    body: dict[str, Any] = {"name": name, "scopes": scope}
    body.update(limits_body(rpm=rpm, tpm=tpm, concurrent=max_concurrent, allow_ip=allow_ip))
    if models:
        body["allowed_models"] = models
    if expires:
        body["expires_at"] = expiry_from_now(expires)
    if org:
        body["org"] = org
    created = _client(ctx).post("/admin/keys", body)
    if json_out:
        print_json(created)
        return
    console.print(
        f"Created key [bold]{created['name']}[/] (id {created['id']}, scopes {', '.join(created['scopes'])})"
    )
    console.print(f"  {created['key']}", highlight=False)
    console.print("[yellow]Copy it now: it will not be shown again.[/]")


@app.command("list")
def list_(ctx: typer.Context, org: OrgOpt = None, wide: WideOpt = False, json_out: JsonOpt = False) -> None:
    """List keys (never their secret)."""
    rows = _client(ctx).get("/admin/keys" + org_query(org))
    if json_out:
        print_json(rows)
        return
    columns = [
        Col("id"),
        Col("name"),
        Col("prefix"),
        Col("state", drop_order=1),
        Col("scopes", drop_order=2),
        Col("models", drop_order=3),
        Col("limits", drop_order=4),
        Col("created", drop_order=5),
    ]
    table_rows = [
        [
            str(r["id"]),
            r["name"],
            r["prefix"],
            "[red]revoked[/]" if r["revoked_at"] else "active",
            ", ".join(r["scopes"]),
            ", ".join(r["allowed_models"]) or "all",
            limits_text(r),
            r["created_at"][:19],
        ]
        for r in rows
    ]
    print_table(console, fit_table(console, columns, table_rows, wide=wide), wide=wide)


@app.command("show")
def show(ctx: typer.Context, key: KeyArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """Show one key (never its secret)."""
    row = _client(ctx).get(f"/admin/keys/{quote(key)}" + org_query(org))
    print_json(row) if json_out else _show(row)


@app.command("update")
def update(
    ctx: typer.Context,
    key: KeyArg,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Replace the scopes.")] = None,
    org: OrgOpt = None,
    models: ModelsOpt = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrent: ConcOpt = None,
    allow_ip: AllowIpOpt = None,
    expires: ExpiresOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change a key's scopes, models, limits, allowlist or expiry; options left out stay as they are."""
    body = limits_body(rpm=rpm, tpm=tpm, concurrent=max_concurrent, allow_ip=allow_ip)
    if scope:
        body["scopes"] = scope
    if models:
        body["allowed_models"] = models
    if expires:
        body["expires_at"] = expiry_from_now(expires)
    if not body:
        raise typer.BadParameter("Give at least one option to change (see --help).")
    row = _client(ctx).patch(f"/admin/keys/{quote(key)}" + org_query(org), body)
    print_json(row) if json_out else console.print(f"Updated key [bold]{row['name']}[/] (id {row['id']}).")


@app.command("revoke")
def revoke(ctx: typer.Context, key: KeyArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """Revoke a key; every daemon refuses it within seconds."""
    row = _client(ctx).post(f"/admin/keys/{quote(key)}/revoke" + org_query(org))
    if json_out:
        print_json(row)
    else:
        console.print(f"Revoked key [bold]{row['name']}[/] (id {row['id']}).")


@app.command("delete")
def delete(ctx: typer.Context, key: KeyArg, org: OrgOpt = None, json_out: JsonOpt = False) -> None:
    """Delete a key for good (revoke keeps it listed; delete removes it)."""
    _client(ctx).delete(f"/admin/keys/{quote(key)}" + org_query(org))
    print_json({"deleted": key}) if json_out else console.print(f"Deleted key [bold]{key}[/].")
