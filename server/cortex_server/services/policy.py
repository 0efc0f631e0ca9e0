"""Who may grant what: a caller never hands out more than it holds, and stays inside its org."""

from __future__ import annotations

from cortex_server.core.auth import ROLE_RANK, Principal
from cortexctl.core.errors import InvalidRequest, PermissionDenied


def ensure_grantable(principal: Principal, scopes: list[str]) -> None:
    """A key may only be given scopes its creator holds ('admin' holds them all)."""
    if "admin" in principal.scopes:
        return
    extra = sorted(s for s in scopes if s not in principal.scopes)
    if extra:
        raise PermissionDenied(
            f"You cannot grant scope(s) you do not hold: {', '.join(extra)}.",
            fix="Ask an admin to create this key.",
        )


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
