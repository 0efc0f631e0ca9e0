"""Users of an org: console logins with a role. Passwords are stored with argon2 only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.core.security import MAX_PASSWORD_BYTES, generate_password, hash_password, verify_password
from cortex_server.db.models import User, is_row_id
from cortex_server.services.sessions import end_user_sessions
from cortexctl.core.errors import AuthenticationError, Conflict, InvalidRequest, NotFound

MIN_PASSWORD = 12


@dataclass(frozen=True)
class CreatedUser:
    row: User
    password: str | None  # set only when we generated it; shown once


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(
            f"The password is too short (minimum {MIN_PASSWORD} characters).",
            fix="Choose a longer password, or leave it out to get a generated one.",
            param="password",
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidRequest(
            f"The password is too long (maximum {MAX_PASSWORD_BYTES} bytes).",
            fix="Choose a shorter password.",
            param="password",
        )


def create_user(
    session: Session, *, org_id: int, username: str, role: str, password: str | None
) -> CreatedUser:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"A user named {username!r} already exists.", fix="Pick another username.")
    generated = None
    if password is None:
        password = generated = generate_password()
    check_password_strength(password)
    row = User(
        org_id=org_id, username=username, role=role, password_hash=hash_password(password), is_active=True
    )
    session.add(row)
    session.flush()
    return CreatedUser(row=row, password=generated)


def list_users(session: Session, *, org_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.org_id == org_id).order_by(User.id)))


def get_user(session: Session, *, org_id: int, ident: str) -> User:
    query = select(User).where(User.org_id == org_id)
    query = query.where(User.id == int(ident)) if is_row_id(ident) else query.where(User.username == ident)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"No user {ident!r}.", fix="List users with `cortexctl users list`.")
    return row


def update_user(session: Session, *, org_id: int, ident: str, changes: dict[str, Any]) -> User:
    """A new password, role or deactivation ends every session of the user at once."""
    row = get_user(session, org_id=org_id, ident=ident)
    ends_sessions = False
    if changes.get("password") is not None:
        check_password_strength(changes["password"])
        row.password_hash = hash_password(changes.pop("password"))
        ends_sessions = True
    changes.pop("password", None)
    if changes.get("role") is not None and changes["role"] != row.role:
        row.role = changes["role"]
        ends_sessions = True
    if changes.get("is_active") is not None and changes["is_active"] != row.is_active:
        row.is_active = changes["is_active"]
        ends_sessions = ends_sessions or not row.is_active
    if ends_sessions:
        end_user_sessions(session, user_id=row.id)
    return row


def delete_user(session: Session, *, org_id: int, ident: str) -> User:
    row = get_user(session, org_id=org_id, ident=ident)
    session.delete(row)
    return row


def login(session: Session, *, username: str, password: str) -> User:
    """The user for these credentials; one vague error for every failure (no user enumeration)."""
    row = session.scalar(select(User).where(User.username == username))
    # verify against a dummy hash when the user is unknown, so timing does not tell
    ok = verify_password(row.password_hash if row is not None else _DUMMY_HASH, password)
    if row is None or not ok or not row.is_active:
        raise AuthenticationError(
            "Wrong username or password.", fix="Check them and retry.", code="invalid_login"
        )
    return row


def change_password(
    session: Session, *, user_id: int, current: str, new: str, keep_session_id: int | None = None
) -> User:
    """Every session of the user but `keep_session_id` ends."""
    row = session.get(User, user_id)
    if row is None or not verify_password(row.password_hash, current):
        raise AuthenticationError("The current password is wrong.", fix="Retry with the right one.")
    check_password_strength(new)
    row.password_hash = hash_password(new)
    end_user_sessions(session, user_id=row.id, keep_id=keep_session_id)
    return row


_DUMMY_HASH = hash_password("cortex-dummy-password-for-timing")
