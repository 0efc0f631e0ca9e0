"""Users of an org: console logins with a role. Passwords are stored with argon2 only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.core.security import generate_password, hash_password, verify_password
from cortex_server.db.models import User
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
    query = query.where(User.id == int(ident)) if ident.isdigit() else query.where(User.username == ident)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"No user {ident!r}.", fix="List users with `cortexctl users list`.")
    return row


def update_user(session: Session, *, org_id: int, ident: str, changes: dict[str, Any]) -> User:
    row = get_user(session, org_id=org_id, ident=ident)
    if "password" in changes:
        check_password_strength(changes["password"])
        row.password_hash = hash_password(changes.pop("password"))
    for name in ("role", "is_active"):
        if name in changes:
            setattr(row, name, changes[name])
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


def change_password(session: Session, *, user_id: int, current: str, new: str) -> User:
    row = session.get(User, user_id)
    if row is None or not verify_password(row.password_hash, current):
        raise AuthenticationError("The current password is wrong.", fix="Retry with the right one.")
    check_password_strength(new)
    row.password_hash = hash_password(new)
    return row


_DUMMY_HASH = hash_password("cortex-dummy-password-for-timing")
