"""Who may grant what: a caller never hands out more than it holds, and stays inside its org.

Keys cannot grow. A key created or changed by a principal is bounded by that principal on
every axis: scopes ⊆ its scopes ('admin' holds them all), models ⊆ its models, IP networks
inside its networks, each limit ≤ its limit (an unlimited creator may set any limit, a
limited one must set one no larger), expiry no later than its own. Who may touch an
existing key: admins, any key of their org; everyone else (members, keys:write keys) only
the keys they created; and nobody a key holding a scope they lack.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cortex_server.core.auth import ROLE_RANK, Principal
from cortex_server.db.models import ApiKey
from cortexctl.core.errors import InvalidRequest, PermissionDenied

LIMIT_FIELDS = {"rpm_limit": "rpm", "tpm_limit": "tpm", "max_concurrent": "concurrent"}


def _exceeds(field: str, detail: str) -> PermissionDenied:
    return PermissionDenied(
        f"A key cannot exceed the principal making it: {field} {detail}.",
        fix="Ask an admin (or a key that holds more) to make this key.",
        code="key_exceeds_creator",
        param=field,
    )


def ensure_grantable(principal: Principal, scopes: Sequence[str]) -> None:
    """A key may only be given scopes its creator holds ('admin' holds them all)."""
    if "admin" in principal.scopes:
        return
    extra = sorted(s for s in scopes if s not in principal.scopes)
    if extra:
        raise _exceeds("scopes", f"{', '.join(extra)} not held by you")


def _inside(networks: Sequence[str], bounds: Sequence[str]) -> list[str]:
    """The networks of `networks` not contained in any network of `bounds`."""
    outer = [ipaddress.ip_network(b, strict=False) for b in bounds]
    outside = []
    for text in networks:
        net = ipaddress.ip_network(text, strict=False)
        if not any(net.version == o.version and net.subnet_of(o) for o in outer):  # type: ignore[arg-type]
            outside.append(text)
    return outside


def ensure_key_within(principal: Principal, key: dict[str, Any]) -> None:
    """`key` (the new or updated key's fields) must not exceed `principal` on any axis."""
    ensure_grantable(principal, key.get("scopes") or [])
    models = key.get("allowed_models") or []
    if principal.allowed_models:
        if not models:
            raise _exceeds(
                "allowed_models", f"must be a subset of {sorted(principal.allowed_models)}, not every model"
            )
        extra = sorted(set(models) - set(principal.allowed_models))
        if extra:
            raise _exceeds("allowed_models", f"{', '.join(extra)} not allowed to you")
    ips = key.get("allowed_ips") or []
    if principal.allowed_ips:
        if not ips:
            raise _exceeds(
                "allowed_ips", f"must lie inside {', '.join(principal.allowed_ips)}, not any address"
            )
        outside = _inside(ips, principal.allowed_ips)
        if outside:
            raise _exceeds(
                "allowed_ips", f"{', '.join(outside)} outside your {', '.join(principal.allowed_ips)}"
            )
    for field, attr in LIMIT_FIELDS.items():
        mine = getattr(principal.limits, attr)
        theirs = key.get(field)
        if mine is not None and (theirs is None or theirs > mine):
            shown = "unlimited" if theirs is None else str(theirs)
            raise _exceeds(field, f"{shown} is more than your {mine}")
    expires: datetime | None = key.get("expires_at")
    if principal.expires_at is not None and (expires is None or expires > principal.expires_at):
        shown = "never" if expires is None else expires.isoformat()
        raise _exceeds(
            "expires_at", f"{shown} is later than your own expiry {principal.expires_at.isoformat()}"
        )


def ensure_manages_key(principal: Principal, row: ApiKey) -> None:
    """May `principal` change, revoke or delete this existing key?"""
    if "admin" not in principal.scopes:
        mine = (
            row.created_by_key_id == principal.key_id
            if principal.kind == "key"
            else row.user_id == principal.user_id and row.user_id is not None
        )
        if not mine:
            raise PermissionDenied(
                f"You can only manage keys you created; {row.name!r} is not one of them.",
                fix="Ask an admin of your organization.",
                code="not_your_key",
            )
    lacking = sorted(s for s in row.scopes if not principal.has_scope(s))
    if lacking:
        raise PermissionDenied(
            f"The key {row.name!r} holds scope(s) you lack: {', '.join(lacking)}.",
            fix="Ask an admin of your organization.",
            code="not_your_key",
        )


def key_fields(row: ApiKey) -> dict[str, Any]:
    return {
        "scopes": list(row.scopes),
        "allowed_models": list(row.allowed_models or []),
        "allowed_ips": list(row.allowed_ips or []),
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "max_concurrent": row.max_concurrent,
        "expires_at": row.expires_at,
    }


def ensure_role_assignable(principal: Principal, role: str) -> None:
    if role not in ROLE_RANK:
        raise InvalidRequest(
            f"Unknown role {role!r}.", fix=f"Use one of: {', '.join(ROLE_RANK)}.", param="role"
        )
    mine = ROLE_RANK.get(principal.role or "", ROLE_RANK["admin"] if "admin" in principal.scopes else -1)
    if principal.is_operator:
        mine = ROLE_RANK["owner"]
    if ROLE_RANK[role] > mine:
        raise PermissionDenied(f"You cannot assign the role {role!r}.", fix="Ask an owner to do it.")


def target_org(principal: Principal, requested_org_id: int | None) -> int:
    """The org a call acts on: the caller's own, or (operators only) another one."""
    if requested_org_id is None or requested_org_id == principal.org_id:
        return principal.org_id
    if not principal.is_operator:
        raise PermissionDenied(
            "You can only act on your own organization.",
            fix="Leave out the org, or ask an appliance operator.",
        )
    return requested_org_id
