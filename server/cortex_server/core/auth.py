"""Who is calling: API key or browser session → Principal, with a short-TTL in-process cache.

The cache holds a principal for at most CACHE_TTL_S; `invalidate()` drops it at once (called
on this daemon after a change, and on every daemon through Redis pub/sub, see
services/invalidation.py). Last-used times are collected here and written in batches
(services/last_used.py), never on the request path.

Floods of made-up tokens must cost little and never push real keys out: found principals
and "no such key" answers live in two caches. The negative one is a bounded LRU (junk
evicts only junk), and each client address may send only so many unknown tokens to the
database per second (UnknownKeyBudget); past that it gets a 429 without a lookup.

Database outages: every key verified by the database is also remembered as last-known-good
(a bounded LRU). Only when a lookup fails because the database cannot be reached
(db.engine.is_connectivity_error) is a key served from there, and only if it was verified
within `stale_max_s`; an unknown key then gets KeyStoreUnavailable (503, retry), never a 401:
it may be valid. Revocations still arrive through Redis and drop exactly what they name
(`forget`); any answer from the database replaces or drops the remembered entry.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.security import hash_api_key
from cortex_server.db.engine import is_connectivity_error
from cortex_server.db.models import Organization, User
from cortex_server.services.keys import find_active_key
from cortex_server.services.sessions import find_live_session

CACHE_TTL_S = 2.0  # a revocation is visible on every daemon within this time
NEGATIVE_TTL_S = 30.0  # "no such key": keys are 256-bit random, so a miss stays a miss
NEGATIVE_MAX = 10_000  # LRU bound of the negative cache
POSITIVE_PRUNE_AT = 50_000  # the valid-principal cache drops expired entries past this size
SEEN_VALID_MAX = 100_000  # digests of keys that were valid once (LRU)
LAST_GOOD_MAX = 100_000  # last-known-good key principals served during a database outage (LRU)
DB_PROBE_S = 1.0  # after a connectivity failure, lookups skip the database this long (no pile-up)
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
    expires_at: datetime | None = None  # keys: the key's expiry, checked on every use, cache hits included
    session_id: int | None = None  # sessions: the auth_sessions row

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


def _org_fields(org: Organization) -> dict[str, object]:
    return {
        "org_name": org.name,
        "org_allowed_ips": tuple(org.allowed_ips or ()),
        "org_limits": Limits(rpm=org.rpm_limit, tpm=org.tpm_limit, concurrent=org.max_concurrent),
    }


class UnknownKeyBudget:
    """Per client address: how many unknown tokens may still reach the database (token bucket).

    `burst` lookups at once, then `per_s` a second. Bounded: at most `max_clients` addresses
    are remembered (least recently seen dropped first).
    """

    def __init__(
        self,
        *,
        burst: int = 30,
        per_s: float = 5.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.per_s, self.max_clients = burst, per_s, max_clients
        self._clock = clock
        self._spent: OrderedDict[str, tuple[float, float]] = OrderedDict()  # ip → (tokens left, at)
        self._lock = threading.Lock()

    def _level(self, ip: str, now: float) -> float:
        left, at = self._spent.get(ip, (float(self.burst), now))
        return min(float(self.burst), left + (now - at) * self.per_s)

    def retry_after_s(self, ip: str | None) -> float:
        """0 if this address may look up an unknown token now, else seconds until it may."""
        with self._lock:
            level = self._level(ip or "?", self._clock())
        return 0.0 if level >= 1 else (1 - level) / self.per_s

    def spend(self, ip: str | None) -> None:
        """One lookup of this address found no key."""
        key, now = ip or "?", self._clock()
        with self._lock:
            self._spent[key] = (self._level(key, now) - 1, now)
            self._spent.move_to_end(key)
            while len(self._spent) > self.max_clients:
                self._spent.popitem(last=False)


class KeyStoreUnavailable(Exception):
    """The database could not be reached and this key was not verified recently: retry later."""


@dataclass(frozen=True)
class Revocation:
    """What a change made invalid; all None = everything (e.g. a message from an older daemon)."""

    key_id: int | None = None
    user_id: int | None = None
    org_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.key_id is None and self.user_id is None and self.org_id is None

    def covers(self, principal: Principal) -> bool:
        return (
            self.everything
            or (self.key_id is not None and principal.key_id == self.key_id)
            or (self.user_id is not None and principal.user_id == self.user_id)
            or (self.org_id is not None and principal.org_id == self.org_id)
        )


class KeyAuthenticator:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        secret: bytes,
        session_idle_s: int = 7200,
        stale_max_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._secret = secret
        self._clock = clock
        self._session_idle_s = session_idle_s
        self.stale_max_s = stale_max_s
        # digest → (verified at, principal): what the database said last, for its outages
        self._last_good: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._db_down_until = 0.0  # skip the database until then (it just failed to connect)
        self.stale_served = 0  # verifications answered from last-known-good (tests, metrics)
        self._valid: dict[str, tuple[float, Principal]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()  # digest → expiry; bounded LRU
        # digests that named a valid key before: their lookups skip the per-address budget, so a
        # flood from a shared address never locks out the real keys used there
        self._seen_valid: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.unknown_budget = UnknownKeyBudget(clock=clock)
        self.db_lookups = 0  # how many key/session lookups reached the database (tests, metrics)
        self.last_used: dict[int, float] = {}  # key id → wall time; drained by LastUsedWriter

    @property
    def database_down(self) -> bool:
        """True while lookups skip the database (it failed to connect less than DB_PROBE_S ago)."""
        return self._clock() < self._db_down_until

    def _cached(self, cache_key: str) -> tuple[bool, Principal | None]:
        now = self._clock()
        hit = self._valid.get(cache_key)
        if hit is not None and hit[0] > now:
            expires = hit[1].expires_at
            if expires is not None and datetime.now(UTC) >= expires:
                return True, None  # expired while cached: the cache TTL must not extend a key's life
            return True, hit[1]
        expiry = self._unknown.get(cache_key)
        if expiry is not None and expiry > now:
            return True, None
        return False, None

    def _store(self, cache_key: str, principal: Principal | None) -> None:
        now = self._clock()
        with self._lock:
            if principal is not None:
                if len(self._valid) >= POSITIVE_PRUNE_AT:  # only real keys/sessions land here
                    for k in [k for k, (exp, _) in self._valid.items() if exp <= now]:
                        del self._valid[k]
                self._valid[cache_key] = (now + CACHE_TTL_S, principal)
                self._unknown.pop(cache_key, None)
                if principal.kind == "key" and self.stale_max_s > 0:
                    self._last_good[cache_key] = (now, principal)
                    self._last_good.move_to_end(cache_key)
                    while len(self._last_good) > LAST_GOOD_MAX:
                        self._last_good.popitem(last=False)
                self._seen_valid[cache_key] = None
                self._seen_valid.move_to_end(cache_key)
                while len(self._seen_valid) > SEEN_VALID_MAX:
                    self._seen_valid.popitem(last=False)
                return
            self._last_good.pop(cache_key, None)  # the database says: no such key (any more)
            self._unknown[cache_key] = now + NEGATIVE_TTL_S
            self._unknown.move_to_end(cache_key)
            while len(self._unknown) > NEGATIVE_MAX:
                self._unknown.popitem(last=False)

    def authenticate(self, key: str) -> Principal | None:
        """Blocking (may hit the DB on a cache miss): call from a worker thread."""
        digest = hash_api_key(key, self._secret)
        found, principal = self._cached(digest)
        if not found:
            if self.database_down:
                principal = self._stale(digest, None)
            else:
                try:
                    principal = self._load_key(digest)
                except Exception as exc:
                    if not is_connectivity_error(exc):
                        raise
                    self._db_down_until = self._clock() + DB_PROBE_S
                    principal = self._stale(digest, exc)
                else:
                    self._store(digest, principal)
        if principal is not None and principal.key_id is not None:
            self.last_used[principal.key_id] = time.time()
        return principal

    def _stale(self, digest: str, cause: BaseException | None) -> Principal:
        """The last-known-good principal of this key, during a database outage (else raise)."""
        now = self._clock()
        with self._lock:
            entry = self._last_good.get(digest)
            if entry is None or now - entry[0] > self.stale_max_s:
                reason = getattr(cause, "orig", None) or cause or "database unreachable"
                raise KeyStoreUnavailable(str(reason))
            principal = entry[1]
            if principal.expires_at is not None and datetime.now(UTC) >= principal.expires_at:
                raise KeyStoreUnavailable("database unreachable")  # expired: not ours to extend
            # a short fresh-cache entry keeps the hot path off worker threads; verified-at stays,
            # and the entry ends with the bound
            self._valid[digest] = (min(now + CACHE_TTL_S, entry[0] + self.stale_max_s), principal)
            self.stale_served += 1
        return principal

    def _load_key(self, digest: str) -> Principal | None:
        self.db_lookups += 1
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
                expires_at=row.expires_at,
                **_org_fields(org),  # type: ignore[arg-type]
            )

    def authenticate_session(self, sid: str) -> Principal | None:
        """The user of a live session record, if still active (blocking)."""
        cache_key = "session:" + hash_api_key(sid, self._secret)
        found, principal = self._cached(cache_key)
        if found:
            return principal
        self.db_lookups += 1
        principal = None
        with self._session_factory() as session:
            record = find_live_session(session, sid=sid, idle_s=self._session_idle_s)
            row = session.get(User, record.user_id) if record is not None else None
            org = session.get(Organization, row.org_id) if row is not None else None
            if record is not None and row is not None and org is not None and row.is_active:
                principal = Principal(
                    kind="session",
                    key_id=None,
                    org_id=row.org_id,
                    user_id=row.id,
                    name=row.username,
                    scopes=ROLE_SCOPES.get(row.role, frozenset()),
                    role=row.role,
                    session_id=record.id,
                    **_org_fields(org),  # type: ignore[arg-type]
                )
        if principal is not None:
            self._store(cache_key, principal)  # an ended session is not cached: it stays ended
        return principal

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from the cache alone: safe to call on the event loop."""
        return self._cached(hash_api_key(key, self._secret))

    def known_valid(self, key: str) -> bool:
        """Did this key authenticate before (on this daemon)? Its lookups are not flood-limited."""
        return hash_api_key(key, self._secret) in self._seen_valid

    def invalidate(self, revocation: Revocation | None = None) -> None:
        """Forget the fresh cache (a key, user, session or org changed), and drop what the change
        names from last-known-good (everything when it names nothing)."""
        revocation = revocation or Revocation()
        with self._lock:
            self._valid.clear()
            self._unknown.clear()
            if revocation.everything:
                self._last_good.clear()
                return
            for digest in [d for d, (_, p) in self._last_good.items() if revocation.covers(p)]:
                del self._last_good[digest]

    def forget_fresh(self) -> None:
        """Drop only the fresh cache: the next lookups ask the database again."""
        with self._lock:
            self._valid.clear()
            self._unknown.clear()


def retry_seconds(seconds: float) -> int:
    """Whole seconds for Retry-After and messages: rounded up, never 0."""
    return max(1, math.ceil(seconds - 1e-9))
