"""Options and rendering shared by `cortexctl orgs|users|keys`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

OrgOpt = Annotated[str | None, typer.Option("--org", help="Organization name or id (operators only).")]
RpmOpt = Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute.")]
TpmOpt = Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens (prompt + completion) per minute.")]
ConcOpt = Annotated[int | None, typer.Option("--max-concurrent", min=1, help="Concurrent requests/streams.")]
AllowIpOpt = Annotated[
    list[str] | None, typer.Option("--allow-ip", help="Allowed client CIDR (IPv4/IPv6); repeat for several.")
]


def limits_body(
    *, rpm: int | None, tpm: int | None, concurrent: int | None, allow_ip: list[str] | None
) -> dict[str, Any]:
    """Only the options given, so `update` changes nothing else."""
    body: dict[str, Any] = {}
    if rpm is not None:
        body["rpm_limit"] = rpm
    if tpm is not None:
        body["tpm_limit"] = tpm
    if concurrent is not None:
        body["max_concurrent"] = concurrent
    if allow_ip:
        body["allowed_ips"] = allow_ip
    return body


def org_query(org: str | None) -> str:
    return f"?org={org}" if org else ""


def limits_text(row: dict[str, Any]) -> str:
    parts = [
        f"{label} {row[field]}"
        for field, label in (("rpm_limit", "rpm"), ("tpm_limit", "tpm"), ("max_concurrent", "conc"))
        if row.get(field)
    ]
    return ", ".join(parts) or "-"
