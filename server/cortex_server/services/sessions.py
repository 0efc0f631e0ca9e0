"""Server-side browser session records: create, find a live one, list, end.

A session ends when its user logs out, changes password, changes role, is deactivated or
deleted, when someone ends it by id, when it is idle longer than `session_idle_s`, or when
it is older than `session_ttl_s`. `last_seen_at` is written at most once per TOUCH_S, so
an active session costs one small UPDATE a minute, never one per request.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cortex_server.core.sessions import session_token_hash
from cortex_server.db.models import AuthSession, utcnow
from cortexctl.core.errors import NotFound

TOUCH_S = 60.0


def create_session(
    session: Session,
    *,
    user_id: int,
    sid: str,
    ttl_s: int,
    client_ip: str | None,
    user_agent: str | None,
) -> AuthSession:
    now = utcnow()
    row = AuthSession(
        user_id=user_id,
        token_hash=session_token_hash(sid),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        client_ip=(client_ip or None) and client_ip[:64],
        user_agent=(user_agent or None) and user_agent[:256],
    )
    session.add(row)
    session.flush()
    return row


def find_live_session(session: Session, *, sid: str, idle_s: int) -> AuthSession | None:
    """The session this id names if it has not ended; touches last_seen_at (at most once a minute)."""
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == session_token_hash(sid)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if (now - row.last_seen_at).total_seconds() > idle_s:
        return None
    if (now - row.last_seen_at).total_seconds() > TOUCH_S:
        row.last_seen_at = now
        session.commit()
    return row


def list_sessions(session: Session, *, user_id: int) -> list[AuthSession]:
    now = utcnow()
    query = (
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        .order_by(AuthSession.id)
    )
    return list(session.scalars(query))


def end_session(session: Session, *, user_id: int, session_id: int) -> AuthSession:
    row = session.get(AuthSession, session_id)
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        raise NotFound(f"No session {session_id} of yours.", fix="List them with GET /auth/sessions.")
    row.revoked_at = utcnow()
    return row


def end_user_sessions(session: Session, *, user_id: int, keep_id: int | None = None) -> int:
    """End every live session of a user (but `keep_id`); returns how many ended."""
    query = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep_id is not None:
        query = query.where(AuthSession.id != keep_id)
    result = session.execute(query.values(revoked_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
