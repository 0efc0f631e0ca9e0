"""Who is calling: API key → Principal, with a short-TTL in-process cache on the hot path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.security import hash_api_key
from cortex_server.services.keys import find_active_key

CACHE_TTL_S = 2.0  # a revocation is visible on every daemon within this time


@dataclass(frozen=True)
class Principal:
    kind: str  # "key" (later: "session")
    key_id: int | None
    org_id: int
    user_id: int | None
    name: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"


class KeyAuthenticator:
    def __init__(
        self, *, session_factory: sessionmaker[Session], secret: bytes, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._session_factory = session_factory
        self._secret = secret
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def authenticate(self, key: str) -> Principal | None:
        """Blocking (may hit the DB on a cache miss): call from a worker thread."""
        digest = hash_api_key(key, self._secret)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._session_factory() as session:
            row = find_active_key(session, key_hash=digest)
            principal = (
                None
                if row is None
                else Principal(
                    kind="key",
                    key_id=row.id,
                    org_id=row.org_id,
                    user_id=row.user_id,
                    name=row.name,
                    scopes=frozenset(row.scopes),
                )
            )
        if len(self._cache) > 10_000:  # bounded: unknown keys must not grow it forever
            self._cache.clear()
        self._cache[digest] = (now + CACHE_TTL_S, principal)
        return principal

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from the cache alone: safe to call on the event loop."""
        hit = self._cache.get(hash_api_key(key, self._secret))
        if hit is not None and hit[0] > self._clock():
            return True, hit[1]
        return False, None

    def invalidate(self) -> None:
        self._cache.clear()
