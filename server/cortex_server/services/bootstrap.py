"""First-run bootstrap: the default org, the first admin user, the local admin token.

The local admin token's key is named after this host and home (`local_token_key_name`), so
several daemons sharing one database (each with its own home) keep their own token: one
re-minting its token never deletes another's.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cortex_server.core.security import generate_password, hash_api_key, hash_password, write_secret_file
from cortex_server.db.models import ApiKey, Installation, Organization, User
from cortex_server.services.keys import create_key, find_active_key
from cortexctl.core.settings import Settings

DEFAULT_ORG = "default"
ADMIN_USERNAME = "admin"
LOCAL_TOKEN_KEY_PREFIX = "cortexctl-local"


def local_token_key_name(home: Path, hostname: str | None = None) -> str:
    """`cortexctl-local@<host>:<hash of home>`: unique per host and home, ≤ 128 characters."""
    host = "".join(c for c in (hostname or socket.gethostname()) if c.isalnum() or c in "-.")[:80]
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return f"{LOCAL_TOKEN_KEY_PREFIX}@{host or 'host'}:{digest}"


@dataclass(frozen=True)
class BootstrapResult:
    admin_username: str
    admin_password: str | None  # until it has been shown once (see mark_password_shown)
    token_created: bool


def bootstrap(
    session: Session, *, settings: Settings, secret: bytes, shows_password: bool = True
) -> BootstrapResult:
    """`shows_password`: the caller shows the operator a password it returns (`cortexctl up`);
    the daemon's own start (`serve`) does not, so it never draws a replacement."""
    org = session.scalar(select(Organization).where(Organization.name == DEFAULT_ORG))
    if org is None:
        org = Organization(name=DEFAULT_ORG)
        session.add(org)
        session.flush()

    installation = ensure_installation(session)
    password = None
    admin = session.scalar(select(User).where(User.username == ADMIN_USERNAME))
    if admin is None and session.scalar(select(User.id).limit(1)) is None:
        password = generate_password()
        session.add(
            User(org_id=org.id, username=ADMIN_USERNAME, password_hash=hash_password(password), role="owner")
        )
        session.flush()
    elif admin is not None and shows_password and not installation.admin_password_shown:
        # A start that failed after creating the admin never showed its password: the only copy
        # is a hash. A new one is drawn and shown, until one start gets as far as showing it.
        password = generate_password()
        admin.password_hash = hash_password(password)
        session.flush()

    return BootstrapResult(
        admin_username=ADMIN_USERNAME,
        admin_password=password,
        token_created=_ensure_local_token(session, settings=settings, secret=secret, org_id=org.id),
    )


def _ensure_local_token(session: Session, *, settings: Settings, secret: bytes, org_id: int) -> bool:
    """Keep $CORTEX_HOME/admin.token valid; mint a new one if it is missing or dead."""
    path = settings.admin_token_file
    if path.is_file():
        token = path.read_text().strip()
        if token and find_active_key(session, key_hash=hash_api_key(token, secret)) is not None:
            return False
    # This host+home's old local key (if any) belongs to a token file that is gone: retire it.
    name = local_token_key_name(settings.home)
    session.execute(delete(ApiKey).where(ApiKey.org_id == org_id, ApiKey.name == name))
    created = create_key(session, secret=secret, org_id=org_id, name=name, scopes=["admin"])
    write_secret_file(path, created.plaintext + "\n")
    return True


def ensure_installation(session: Session) -> Installation:
    """This database's installation row, created once (a random id)."""
    row = session.scalar(select(Installation).order_by(Installation.id).limit(1))
    if row is not None:
        return row
    # A database that already has users predates this row: its admin password was shown then.
    upgraded = session.scalar(select(User.id).limit(1)) is not None
    try:
        with session.begin_nested():
            session.add(
                Installation(id=1, installation_id=secrets.token_hex(6), admin_password_shown=upgraded)
            )
    except IntegrityError:  # another daemon created it first
        pass
    row = session.scalar(select(Installation).order_by(Installation.id).limit(1))
    assert row is not None
    return row


def mark_password_shown(session: Session) -> None:
    """The first admin password reached the operator: never draw another."""
    session.execute(update(Installation).values(admin_password_shown=True))
