"""The key cache: revocation bounded by the TTL without Redis; last-used written in batches."""

from __future__ import annotations

from cortex_server.core.auth import CACHE_TTL_S, KeyAuthenticator
from cortex_server.db.models import ApiKey
from cortex_server.services.keys import get_key, revoke_key
from cortex_server.services.last_used import flush_last_used
from tests.access.conftest import AccessEnv


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_without_redis_another_daemon_sees_a_revocation_within_the_ttl(env: AccessEnv) -> None:
    ctx = env.app.state.cortex
    key = env.key("ttl", ["inference"])
    clock = Clock()
    other_daemon = KeyAuthenticator(session_factory=ctx.session_factory, secret=ctx.secret, clock=clock)
    assert other_daemon.authenticate(key) is not None
    with ctx.session_factory() as session:
        revoke_key(session, row=get_key(session, org_id=1, ident="ttl"))
        session.commit()
    clock.t += CACHE_TTL_S - 0.1
    assert other_daemon.authenticate(key) is not None  # still cached: the bound, not better
    clock.t += 0.2
    assert other_daemon.authenticate(key) is None
    assert CACHE_TTL_S <= 2.0


def test_last_used_is_recorded_off_the_request_path(env: AccessEnv) -> None:
    ctx = env.app.state.cortex
    key = env.key("used", ["inference"])
    with ctx.session_factory() as session:
        assert session.query(ApiKey).filter_by(name="used").one().last_used_at is None
    for _ in range(5):
        assert env.client.post("/test/inference", json={}, headers=env.auth(key)).status_code == 200
    with ctx.session_factory() as session:  # not written per request...
        assert session.query(ApiKey).filter_by(name="used").one().last_used_at is None
    assert flush_last_used(authenticator=ctx.authenticator, session_factory=ctx.session_factory) >= 1
    with ctx.session_factory() as session:  # ...but by the batch writer
        assert session.query(ApiKey).filter_by(name="used").one().last_used_at is not None
    assert env.admin("GET", "/admin/keys/used")["last_used_at"] is not None
