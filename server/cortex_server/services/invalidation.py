"""Auth cache invalidation across daemons: a Redis pub/sub channel, or the TTL alone.

`notify(...)` clears this daemon's cache at once and publishes on the channel; every daemon's
`listen()` task clears its own cache on a message. Without Redis (or while it is down) the
2 s cache TTL still bounds how long a revoked key keeps working while the database is up.

A message names what changed (JSON: key_id / user_id / org_id), so that the last-known-good
principals kept for database outages (core/auth.py) lose exactly those and keep the rest; a
message naming nothing (older daemons send b"1") drops everything. Revocations during a
database outage therefore reach every daemon through Redis at once; without Redis as well,
a revoked key is served at most auth_stale_max_s after it was last verified.

The workers of one `serve --workers N` also send each message to each other directly
(services/worker_peers.py), so within one daemon a revocation is immediate with Redis down too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from cortex_server.core.auth import KeyAuthenticator, Revocation
from cortex_server.services.worker_peers import WorkerPeers

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


class AuthInvalidator:
    def __init__(
        self,
        *,
        authenticator: KeyAuthenticator,
        redis_url: str | None,
        prefix: str,
        peers: WorkerPeers | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._peers = peers
        self._url = redis_url
        self.channel = f"{prefix}auth-invalidate"
        self._pub: redis.Redis | None = None
        if redis_url:  # imported here: a daemon without Redis never loads it (services/ratelimit.py)
            import redis

            self._pub = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)

    def notify(
        self, *, key_id: int | None = None, user_id: int | None = None, org_id: int | None = None
    ) -> None:
        """Call after a key/user/org change is committed (blocking; fine from sync routes), naming
        what changed; naming nothing invalidates everything."""
        revocation = Revocation(key_id=key_id, user_id=user_id, org_id=org_id)
        self._authenticator.invalidate(revocation)
        if self._peers is not None:
            self._peers.send(encode(revocation))
        if self._pub is None:
            return
        from redis.exceptions import RedisError

        try:
            self._pub.publish(self.channel, encode(revocation))
        except RedisError as exc:
            log.warning(
                "could not publish auth invalidation (%s); other daemons catch up by TTL", type(exc).__name__
            )

    async def listen(self, *, ready: asyncio.Event | None = None) -> None:
        """Run for the daemon's lifetime: clear the cache on every message (from Redis or a
        worker peer); reconnect to Redis on errors."""
        listeners = []
        if self._peers is not None:
            listeners.append(self._peers.receive(lambda data: self._authenticator.invalidate(decode(data))))
        if self._url is not None:
            listeners.append(self._listen_redis(ready))
        await asyncio.gather(*listeners)

    async def _listen_redis(self, ready: asyncio.Event | None) -> None:
        assert self._url is not None
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=1.0)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    # we may have missed messages while away: re-ask the database for everything;
                    # last-known-good stays (its bound, auth_stale_max_s, covers missed revocations)
                    self._authenticator.forget_fresh()
                    if ready is not None:
                        ready.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._authenticator.invalidate(decode(message.get("data")))
            except (RedisError, OSError) as exc:
                log.warning(
                    "auth invalidation channel lost (%s); retrying in %.1fs", type(exc).__name__, delay
                )
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def close(self) -> None:
        if self._pub is not None:
            self._pub.close()
        if self._peers is not None:
            self._peers.close()


def encode(revocation: Revocation) -> bytes:
    if revocation.everything:
        return b"1"
    fields = {"key_id": revocation.key_id, "user_id": revocation.user_id, "org_id": revocation.org_id}
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def decode(data: object) -> Revocation:
    """A message's revocation; anything unreadable means everything (the safe side)."""
    try:
        fields = json.loads(data) if isinstance(data, bytes | str) else None
        if not isinstance(fields, dict):
            return Revocation()
        ids = {k: fields.get(k) for k in ("key_id", "user_id", "org_id")}
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in ids.values()):
            return Revocation()
        return Revocation(**ids)
    except ValueError:
        return Revocation()
