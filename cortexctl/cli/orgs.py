"""`cortexctl orgs`: organizations (tenants) and their org-wide limits. Operators only for writes."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from cortexctl.cli.access_common import AllowIpOpt, ConcOpt, RpmOpt, TpmOpt, limits_body, limits_text
from cortexctl.cli.common import JsonOpt, console, print_json, settings_of
from cortexctl.cli.tables import Col, WideOpt, fit_table, print_table
from cortexctl.core.client import AdminClient

app = typer.Typer(help="Create, list, update and delete organizations.", no_args_is_help=True)
OrgArg = Annotated[str, typer.Argument(help="Organization name or id.")]


def _client(ctx: typer.Context) -> AdminClient:
    return AdminClient(settings_of(ctx))


def _print(rows: list[dict[str, Any]], *, wide: bool = False) -> None:
    columns = [Col("id"), Col("name"), Col("limits", 2), Col("allowed IPs", 3), Col("created", 4)]
    table_rows = [
        [str(r["id"]), r["name"], limits_text(r), ", ".join(r["allowed_ips"]) or "any", r["created_at"][:19]]
        for r in rows
    ]
    print_table(console, fit_table(console, columns, table_rows, wide=wide), wide=wide)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique name.")],
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrent: ConcOpt = None,
    allow_ip: AllowIpOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an organization; its limits bind all of its keys together."""
    body = {"name": name, **limits_body(rpm=rpm, tpm=tpm, concurrent=max_concurrent, allow_ip=allow_ip)}
    row = _client(ctx).post("/admin/orgs", body)
    print_json(row) if json_out else console.print(
        f"Created organization [bold]{row['name']}[/] (id {row['id']})."
    )


@app.command("list")
def list_(ctx: typer.Context, wide: WideOpt = False, json_out: JsonOpt = False) -> None:
    """List organizations (admins of other orgs see only their own)."""
    rows = _client(ctx).get("/admin/orgs")
    print_json(rows) if json_out else _print(rows, wide=wide)


@app.command("show")
def show(ctx: typer.Context, org: OrgArg, json_out: JsonOpt = False) -> None:
    """Show one organization with its limits."""
    row = _client(ctx).get(f"/admin/orgs/{quote(org)}")
    print_json(row) if json_out else _print([row], wide=True)


@app.command("update")
def update(
    ctx: typer.Context,
    org: OrgArg,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrent: ConcOpt = None,
    allow_ip: AllowIpOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change an organization's limits or IP allowlist; options left out stay as they are."""
    body = limits_body(rpm=rpm, tpm=tpm, concurrent=max_concurrent, allow_ip=allow_ip)
    if not body:
        raise typer.BadParameter("Give at least one option to change (see --help).")
    row = _client(ctx).patch(f"/admin/orgs/{quote(org)}", body)
    print_json(row) if json_out else console.print(f"Updated organization [bold]{row['name']}[/].")


@app.command("delete")
def delete(ctx: typer.Context, org: OrgArg, json_out: JsonOpt = False) -> None:
    """Delete an organization with its users and keys."""
    _client(ctx).delete(f"/admin/orgs/{quote(org)}")
    print_json({"deleted": org}) if json_out else console.print(f"Deleted organization [bold]{org}[/].")
