"""Who is calling: API key or browser session → Principal, with a short-TTL in-process cache.

The cache holds a principal for at most CACHE_TTL_S; `invalidate()` drops it at once (called
on this daemon after a change, and on every daemon through Redis pub/sub, see
services/invalidation.py). Last-used times are collected here and written in batches
(services/last_used.py), never on the request path.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.security import hash_api_key
from cortex_server.db.models import Organization, User
from cortex_server.services.keys import find_active_key

CACHE_TTL_S = 2.0  # a revocation is visible on every daemon within this time
DEFAULT_ORG = "default"  # its admins operate the appliance (see Principal.is_operator)

# Browser users get the scopes of their role. "admin" implies every scope.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset({"admin"}),
    "admin": frozenset({"admin"}),
    "member": frozenset({"models:read", "usage:read", "keys:write", "chat"}),
    "viewer": frozenset({"models:read", "usage:read"}),
}
ROLE_RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None


@dataclass(frozen=True)
class Principal:
    kind: str  # "key" | "session"
    key_id: int | None
    org_id: int
    user_id: int | None
    name: str
    scopes: frozenset[str]
    role: str | None = None  # sessions: the user's role
    org_name: str = ""
    allowed_models: tuple[str, ...] = ()  # empty = every model
    allowed_ips: tuple[str, ...] = ()  # the key's CIDRs; empty = any
    org_allowed_ips: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    org_limits: Limits = field(default_factory=Limits)
    csrf_token: str | None = None  # sessions: the token writes must echo in X-CSRF-Token
    expires_at: float | None = None  # keys: epoch seconds; checked on every use, cache hits included

    def has_scope(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    @property
    def is_operator(self) -> bool:
        """Admins of the default org run the appliance: they may manage orgs and appliance-wide models."""
        return self.org_name == DEFAULT_ORG and "admin" in self.scopes

    def model_allowed(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    @property
    def actor(self) -> str:
        return f"{'user' if self.kind == 'session' else self.kind}:{self.name}"


def password_version(password_hash: str) -> str:
    """Changes whenever the password does: sessions carry it, so a password change ends them."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _epoch(when: datetime | None) -> float | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()  # stored naive = UTC


def _org_fields(org: Organization) -> dict[str, object]:
    return {
        "org_name": org.name,
        "org_allowed_ips": tuple(org.allowed_ips or ()),
        "org_limits": Limits(rpm=org.rpm_limit, tpm=org.tpm_limit, concurrent=org.max_concurrent),
    }


class KeyAuthenticator:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        secret: bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._secret = secret
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self.last_used: dict[int, float] = {}  # key id → wall time; drained by LastUsedWriter

    def _cached(self, cache_key: str) -> tuple[bool, Principal | None]:
        hit = self._cache.get(cache_key)
        if hit is None or hit[0] <= self._clock():
            return False, None
        principal = hit[1]
        if principal is not None and principal.expires_at is not None and time.time() >= principal.expires_at:
            return True, None  # expired while cached: the cache TTL must not extend a key's life
        return True, principal

    def _store(self, cache_key: str, principal: Principal | None) -> None:
        if len(self._cache) > 10_000:  # bounded: unknown keys must not grow it forever
            self._cache.clear()
        self._cache[cache_key] = (self._clock() + CACHE_TTL_S, principal)

    def authenticate(self, key: str) -> Principal | None:
        """Blocking (may hit the DB on a cache miss): call from a worker thread."""
        digest = hash_api_key(key, self._secret)
        found, principal = self._cached(digest)
        if not found:
            principal = self._load_key(digest)
            self._store(digest, principal)
        if principal is not None and principal.key_id is not None:
            self.last_used[principal.key_id] = time.time()
        return principal

    def _load_key(self, digest: str) -> Principal | None:
        with self._session_factory() as session:
            row = find_active_key(session, key_hash=digest)
            if row is None:
                return None
            org = session.get(Organization, row.org_id)
            if org is None:
                return None
            return Principal(
                kind="key",
                key_id=row.id,
                org_id=row.org_id,
                user_id=row.user_id,
                name=row.name,
                scopes=frozenset(row.scopes),
                allowed_models=tuple(row.allowed_models or ()),
                allowed_ips=tuple(row.allowed_ips or ()),
                limits=Limits(rpm=row.rpm_limit, tpm=row.tpm_limit, concurrent=row.max_concurrent),
                expires_at=_epoch(row.expires_at),
                **_org_fields(org),  # type: ignore[arg-type]
            )

    def authenticate_user(self, *, user_id: int, pw_version: str) -> Principal | None:
        """A session's user, if still active and the password unchanged since login (blocking)."""
        cache_key = f"user:{user_id}:{pw_version}"
        found, principal = self._cached(cache_key)
        if found:
            return principal
        with self._session_factory() as session:
            row = session.scalar(select(User).where(User.id == user_id))
            org = session.get(Organization, row.org_id) if row is not None else None
            principal = None
            if row is not None and org is not None and row.is_active:
                if password_version(row.password_hash) == pw_version:
                    principal = Principal(
                        kind="session",
                        key_id=None,
                        org_id=row.org_id,
                        user_id=row.id,
                        name=row.username,
                        scopes=ROLE_SCOPES.get(row.role, frozenset()),
                        role=row.role,
                        **_org_fields(org),  # type: ignore[arg-type]
                    )
        self._store(cache_key, principal)
        return principal

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from the cache alone: safe to call on the event loop."""
        return self._cached(hash_api_key(key, self._secret))

    def invalidate(self) -> None:
        self._cache.clear()
