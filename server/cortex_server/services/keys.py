"""API keys: create (plaintext returned once), list, show, update, revoke, delete; all scoped to one org."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.core.security import generate_api_key, hash_api_key, key_display_prefix
from cortex_server.db.models import ApiKey, is_row_id, utcnow
from cortex_server.services.netaccess import parse_cidrs
from cortexctl.core.errors import Conflict, InvalidRequest, NotFound

SCOPES = (
    "inference",
    "models:read",
    "models:write",
    "keys:write",
    "users:write",
    "usage:read",
    "metrics:read",
    "chat",
    "admin",
)


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKey
    plaintext: str


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidRequest(
            f"Unknown scope(s): {', '.join(unknown)}.",
            fix=f"Use one of: {', '.join(SCOPES)}.",
            param="scopes",
        )
    if not scopes:
        raise InvalidRequest("A key needs at least one scope.", fix=f"Use one of: {', '.join(SCOPES)}.")
    return sorted(set(scopes))


def normalize(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated, canonical key fields (400 naming the field for a bad one); absent stay absent."""
    out = dict(fields)
    if "scopes" in out:
        out["scopes"] = validate_scopes(out["scopes"] or [])
    if "allowed_ips" in out:
        out["allowed_ips"] = parse_cidrs(out["allowed_ips"] or [])
    if "allowed_models" in out:
        out["allowed_models"] = sorted(set(out["allowed_models"] or []))
    if "expires_at" in out:
        _check_expiry(out["expires_at"])
    return out


def create_key(
    session: Session,
    *,
    secret: bytes,
    org_id: int,
    name: str,
    scopes: list[str],
    user_id: int | None = None,
    created_by_key_id: int | None = None,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    allowed_ips: list[str] | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    max_concurrent: int | None = None,
) -> CreatedKey:
    scopes = validate_scopes(scopes)
    _check_expiry(expires_at)
    taken = session.scalar(select(ApiKey.id).where(ApiKey.org_id == org_id, ApiKey.name == name))
    if taken is not None:
        raise Conflict(
            f"A key named {name!r} already exists.", fix="Pick another --name or revoke the old key."
        )
    plaintext = generate_api_key()
    row = ApiKey(
        org_id=org_id,
        user_id=user_id,
        created_by_key_id=created_by_key_id,
        name=name,
        prefix=key_display_prefix(plaintext),
        key_hash=hash_api_key(plaintext, secret),
        scopes=scopes,
        expires_at=expires_at,
        allowed_models=sorted(set(allowed_models or [])),
        allowed_ips=parse_cidrs(allowed_ips or []),
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        max_concurrent=max_concurrent,
    )
    session.add(row)
    session.flush()
    return CreatedKey(row=row, plaintext=plaintext)


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
        raise InvalidRequest(
            "expires_at must be a future time with a timezone.",
            fix="Use e.g. 2030-01-01T00:00:00Z, or `--expires 30d` in the CLI.",
            param="expires_at",
        )


# Fields `update_key` may change; None in `changes` clears a limit, absent leaves it.
UPDATABLE = (
    "scopes",
    "allowed_models",
    "allowed_ips",
    "rpm_limit",
    "tpm_limit",
    "max_concurrent",
    "expires_at",
)


def update_key(session: Session, *, row: ApiKey, changes: dict[str, Any]) -> ApiKey:
    """Apply `changes` (see UPDATABLE) to a key found with `get_key`."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidRequest(
            f"Cannot change {', '.join(sorted(unknown))}.", fix=f"Change only {', '.join(UPDATABLE)}."
        )
    for name, value in normalize(changes).items():
        setattr(row, name, value)
    return row


def delete_key(session: Session, *, row: ApiKey) -> ApiKey:
    session.delete(row)
    return row


def list_keys(session: Session, *, org_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.id)))


def get_key(session: Session, *, org_id: int, ident: str) -> ApiKey:
    """A key of this org by numeric id or by name."""
    query = select(ApiKey).where(ApiKey.org_id == org_id)
    by_id = is_row_id(ident)
    query = query.where(ApiKey.id == int(ident)) if by_id else query.where(ApiKey.name == ident)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"No API key {ident!r}.", fix="List keys with `cortexctl keys list`.")
    return row


def revoke_key(session: Session, *, row: ApiKey) -> ApiKey:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def find_active_key(session: Session, *, key_hash: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return row
