"""First-run bootstrap: the default org, the first admin user, the local admin token."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cortex_server.core.security import generate_password, hash_api_key, hash_password, write_secret_file
from cortex_server.db.models import ApiKey, Organization, User
from cortex_server.services.keys import create_key, find_active_key
from cortexctl.core.settings import Settings

DEFAULT_ORG = "default"
ADMIN_USERNAME = "admin"
LOCAL_TOKEN_KEY_NAME = "cortexctl-local"


@dataclass(frozen=True)
class BootstrapResult:
    admin_username: str
    admin_password: str | None  # only on the run that created the user
    token_created: bool


def bootstrap(session: Session, *, settings: Settings, secret: bytes) -> BootstrapResult:
    org = session.scalar(select(Organization).where(Organization.name == DEFAULT_ORG))
    if org is None:
        org = Organization(name=DEFAULT_ORG)
        session.add(org)
        session.flush()

    password = None
    if session.scalar(select(func.count()).select_from(User)) == 0:
        password = generate_password()
        session.add(
            User(org_id=org.id, username=ADMIN_USERNAME, password_hash=hash_password(password), role="owner")
        )
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
    # The old local key (if any) belongs to a token file that is gone: retire it.
    session.execute(delete(ApiKey).where(ApiKey.org_id == org_id, ApiKey.name == LOCAL_TOKEN_KEY_NAME))
    created = create_key(session, secret=secret, org_id=org_id, name=LOCAL_TOKEN_KEY_NAME, scopes=["admin"])
    write_secret_file(path, created.plaintext + "\n")
    return True
