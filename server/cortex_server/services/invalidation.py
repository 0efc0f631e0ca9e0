"""Auth cache invalidation across daemons: a Redis pub/sub channel, or the TTL alone.

`notify()` clears this daemon's cache at once and publishes on the channel; every daemon's
`listen()` task clears its own cache on a message. Without Redis (or while it is down) the
2 s cache TTL still bounds how long a revoked key keeps working.
"""

from __future__ import annotations

import asyncio
import logging

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cortex_server.core.auth import KeyAuthenticator

log = logging.getLogger(__name__)


class AuthInvalidator:
    def __init__(self, *, authenticator: KeyAuthenticator, redis_url: str | None, prefix: str) -> None:
        self._authenticator = authenticator
        self._url = redis_url
        self.channel = f"{prefix}auth-invalidate"
        self._pub = (
            redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            if redis_url
            else None
        )

    def notify(self) -> None:
        """Call after a key/user/org change is committed (blocking; fine from sync routes)."""
        self._authenticator.invalidate()
        if self._pub is None:
            return
        try:
            self._pub.publish(self.channel, b"1")
        except RedisError as exc:
            log.warning(
                "could not publish auth invalidation (%s); other daemons catch up by TTL", type(exc).__name__
            )

    async def listen(self, *, ready: asyncio.Event | None = None) -> None:
        """Run for the daemon's lifetime: clear the cache on every message; reconnect on errors."""
        if self._url is None:
            return
        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=1.0)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._authenticator.invalidate()  # we may have missed messages while away
                    if ready is not None:
                        ready.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._authenticator.invalidate()
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
