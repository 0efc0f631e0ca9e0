"""API keys: create (plaintext returned once), list, revoke, resolve by name or id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.core.security import generate_api_key, hash_api_key, key_display_prefix
from cortex_server.db.models import ApiKey, utcnow
from cortexctl.core.errors import Conflict, InvalidRequest, NotFound

SCOPES = ("inference", "models:read", "models:write", "keys:write", "users:write", "usage:read", "admin")


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKey
    plaintext: str


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidRequest(
            f"Unknown scope(s): {', '.join(unknown)}.", fix=f"Use one of: {', '.join(SCOPES)}.", param="scopes"
        )
    if not scopes:
        raise InvalidRequest("A key needs at least one scope.", fix=f"Use one of: {', '.join(SCOPES)}.")
    return sorted(set(scopes))


def create_key(
    session: Session,
    *,
    secret: bytes,
    org_id: int,
    name: str,
    scopes: list[str],
    user_id: int | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    scopes = validate_scopes(scopes)
    taken = session.scalar(select(ApiKey.id).where(ApiKey.org_id == org_id, ApiKey.name == name))
    if taken is not None:
        raise Conflict(f"A key named {name!r} already exists.", fix="Pick another --name or revoke the old key.")
    plaintext = generate_api_key()
    row = ApiKey(
        org_id=org_id,
        user_id=user_id,
        name=name,
        prefix=key_display_prefix(plaintext),
        key_hash=hash_api_key(plaintext, secret),
        scopes=scopes,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return CreatedKey(row=row, plaintext=plaintext)


def list_keys(session: Session, *, org_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.id)))


def get_key(session: Session, *, org_id: int, ident: str) -> ApiKey:
    """A key of this org by numeric id or by name."""
    query = select(ApiKey).where(ApiKey.org_id == org_id)
    query = query.where(ApiKey.id == int(ident)) if ident.isdigit() else query.where(ApiKey.name == ident)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"No API key {ident!r}.", fix="List keys with `cortexctl keys list`.")
    return row


def revoke_key(session: Session, *, org_id: int, ident: str) -> ApiKey:
    row = get_key(session, org_id=org_id, ident=ident)
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
