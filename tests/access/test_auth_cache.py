"""The key cache: revocation bounded by the TTL without Redis; last-used written in batches."""

from __future__ import annotations

import time

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


def test_a_flood_of_unknown_keys_costs_few_lookups_and_never_evicts_valid_keys(env: AccessEnv) -> None:
    import secrets

    from cortex_server.core.auth import NEGATIVE_MAX

    ctx = env.app.state.cortex
    auth = ctx.authenticator
    key = env.key("valid", ["inference"])
    # Time stands still for the cache and the budget: what is checked is the counting, never how
    # fast this host sends 300 requests (a slow host would refill the budget or expire the cache).
    frozen = time.monotonic()
    auth._clock = auth.unknown_budget._clock = lambda: frozen
    assert env.client.post("/test/inference", json={}, headers=env.auth(key)).status_code == 200
    before = auth.db_lookups
    statuses = []
    for _ in range(300):  # random tokens from one address
        junk = "sk-cortex-" + secrets.token_urlsafe(32)
        statuses.append(env.client.post("/test/inference", json={}, headers=env.auth(junk)).status_code)
    lookups = auth.db_lookups - before
    budget = auth.unknown_budget.burst + 1
    assert set(statuses) == {401, 429} and statuses[0] == 401
    assert lookups <= budget < 300, (lookups, budget)  # the rest were refused without a lookup
    refused = env.client.post("/test/inference", json={}, headers=env.auth("sk-cortex-" + "x" * 43))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # the valid key is still served at the flooding address: from the cache, or (its entry older
    # than the TTL) with one lookup that the address's spent budget does not block
    again = auth.db_lookups
    assert env.client.post("/test/inference", json={}, headers=env.auth(key)).status_code == 200
    assert auth.db_lookups - again <= 1
    # the negative cache is a bounded LRU of its own: junk cannot grow memory or push valid keys out
    for i in range(NEGATIVE_MAX + 50):
        auth._store(f"junk-{i}", None)
    assert len(auth._unknown) == NEGATIVE_MAX
    assert auth.cached(key) == (True, auth.cached(key)[1]) and auth.cached(key)[1] is not None
    # another address is not punished for the first one's flood
    other = env.client.post(
        "/test/inference",
        json={},
        headers={**env.auth("sk-cortex-" + "y" * 43), "X-Forwarded-For": "10.1.1.1"},
    )
    assert other.status_code in (401, 429)  # no trusted proxy here: same peer, same budget


def test_overlong_bearer_tokens_are_refused_without_hashing(env: AccessEnv) -> None:
    before = env.app.state.cortex.authenticator.db_lookups
    resp = env.client.get("/admin/keys", headers=env.auth("k" * 20_000))
    assert resp.status_code == 401 and env.app.state.cortex.authenticator.db_lookups == before
