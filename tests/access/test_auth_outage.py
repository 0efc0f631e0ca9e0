"""Keys through a database outage: last-known-good, bounded by auth_stale_max_s, revocable by name.

The outage is real: the authenticator's database becomes a PostgreSQL address where nothing
listens (connection refused), the failure `is_connectivity_error` must recognise.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from cortex_server.core.auth import CACHE_TTL_S, DB_PROBE_S, KeyAuthenticator, KeyStoreUnavailable, Revocation
from cortex_server.db.engine import is_connectivity_error
from cortex_server.services.invalidation import decode, encode
from tests.access.conftest import AccessEnv
from tests.conftest import free_port

STALE_MAX_S = 300.0


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def dead_database() -> sessionmaker:  # type: ignore[type-arg]
    engine = create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone", connect_args={"connect_timeout": 2}
    )
    return sessionmaker(engine)


def test_a_refused_connection_is_a_connectivity_error_and_a_bad_query_is_not() -> None:
    with pytest.raises(OperationalError) as refused:
        with dead_database()() as session:
            session.execute(text("SELECT 1"))
    assert is_connectivity_error(refused.value)
    engine = create_engine("sqlite://")
    with pytest.raises(OperationalError) as wrong, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_connectivity_error(wrong.value)  # the database answered: authoritative


def test_verified_keys_are_served_during_an_outage_within_the_bound(env: AccessEnv) -> None:
    ctx = env.app.state.cortex
    clock = Clock()
    auth = KeyAuthenticator(
        session_factory=ctx.session_factory, secret=ctx.secret, stale_max_s=STALE_MAX_S, clock=clock
    )
    known, unseen = env.key("known", ["inference"]), env.key("unseen", ["inference"])
    principal = auth.authenticate(known)
    assert principal is not None
    auth._session_factory = dead_database()  # the outage begins
    clock.t += CACHE_TTL_S + 0.1
    assert auth.authenticate(known) == principal  # from last-known-good
    with pytest.raises(KeyStoreUnavailable):
        auth.authenticate(unseen)  # may be valid: not a "no such key"
    clock.t += STALE_MAX_S - CACHE_TTL_S - 0.2
    assert auth.authenticate(known) == principal  # just inside the bound
    clock.t += 0.2
    with pytest.raises(KeyStoreUnavailable):
        auth.authenticate(known)  # verified longer ago than auth_stale_max_s
    assert auth.stale_served == 2

    auth._session_factory = ctx.session_factory  # the database is back
    clock.t += DB_PROBE_S
    assert auth.authenticate(known) == principal and auth.authenticate(unseen) is not None


def test_a_named_revocation_drops_exactly_its_key_and_a_bare_one_drops_all(env: AccessEnv) -> None:
    ctx = env.app.state.cortex
    clock = Clock()
    auth = KeyAuthenticator(session_factory=ctx.session_factory, secret=ctx.secret, clock=clock)
    first, second = env.key("first", ["inference"]), env.key("second", ["inference"])
    p1, p2 = auth.authenticate(first), auth.authenticate(second)
    assert p1 is not None and p2 is not None
    auth._session_factory = dead_database()
    auth.invalidate(decode(encode(Revocation(key_id=p1.key_id))))  # as a message through Redis
    with pytest.raises(KeyStoreUnavailable):
        auth.authenticate(first)
    assert auth.authenticate(second) == p2
    auth.invalidate(decode(b"1"))  # an older daemon's message, or any junk: everything
    clock.t += CACHE_TTL_S + 0.1
    with pytest.raises(KeyStoreUnavailable):
        auth.authenticate(second)


def test_revocation_messages_round_trip_and_junk_means_everything() -> None:
    for revocation in (Revocation(key_id=3), Revocation(user_id=4), Revocation(org_id=5), Revocation()):
        assert decode(encode(revocation)) == revocation
    for junk in (b"1", b"{", b"[]", b'{"key_id": "3"}', b'{"key_id": true}', None):
        assert decode(junk).everything
