"""Browser sessions: signed cookies, CSRF, logout, password change, cookie attributes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from cortex_server.core.sessions import SESSION_COOKIE, SessionCodec
from cortex_server.services.login_throttle import LoginThrottle, RedisFailures
from cortexctl.core.errors import RateLimited
from tests.access.conftest import AccessEnv, make_env
from tests.conftest import free_port


def test_login_sets_a_signed_httponly_strict_cookie_and_me_works(env: AccessEnv) -> None:
    resp = env.client.post("/auth/login", json={"username": "admin", "password": env.admin_password})
    assert resp.status_code == 200
    set_cookie = [
        v for k, v in resp.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE)
    ][0]
    attrs = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= attrs and "samesite=strict" in set_cookie.lower()
    assert "secure" not in attrs  # plain http from a non-proxy peer
    assert env.admin_password not in resp.text
    env.client.cookies.clear()
    cookie, csrf = resp.cookies[SESSION_COOKIE], resp.json()["csrf_token"]
    me = env.client.get("/auth/me", headers=env.session_headers(cookie)).json()
    assert me == {
        **me,
        "kind": "session",
        "name": "admin",
        "role": "owner",
        "operator": True,
        "csrf_token": csrf,
    }


def test_wrong_password_and_unknown_user_get_the_same_401(env: AccessEnv) -> None:
    a = env.client.post("/auth/login", json={"username": "admin", "password": "wrong-password-123"})
    b = env.client.post("/auth/login", json={"username": "nobody", "password": "wrong-password-123"})
    assert a.status_code == b.status_code == 401 and a.json() == b.json()
    assert SESSION_COOKIE not in a.cookies


def test_tampered_forged_and_expired_cookies_are_rejected(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    cookie, _ = env.login("admin", env.admin_password)
    assert env.client.get("/auth/me", headers=env.session_headers(cookie)).status_code == 200
    payload, _, sig = cookie.partition(".")
    # not the last character: its low bits may be base64 padding, and the signature would survive
    flipped = cookie[:-5] + ("A" if cookie[-5] != "A" else "B") + cookie[-4:]
    forged, _ = SessionCodec(secret=b"another-daemon-secret", max_age_s=3600).issue()
    # signed with the daemon's own secret, but naming no session record: still refused
    unrecorded, _ = SessionCodec(secret=env.app.state.cortex.secret, max_age_s=3600).issue()
    for bad in (flipped, "garbage", forged, payload + ".x." + sig, unrecorded, "x" * 5000):
        resp = env.client.get("/auth/me", headers=env.session_headers(bad))
        assert resp.status_code == 401, bad
    codec = SessionCodec(secret=env.app.state.cortex.secret, max_age_s=3600)
    assert codec.load(cookie) is not None
    assert SessionCodec(secret=env.app.state.cortex.secret, max_age_s=-1).load(cookie) is None  # expired


def test_csrf_header_required_on_writes_only(env: AccessEnv) -> None:
    cookie, csrf = env.login("admin", env.admin_password)
    body = {"name": "via-session", "scopes": ["inference"]}
    assert env.client.get("/admin/keys", headers=env.session_headers(cookie)).status_code == 200
    no_header = env.client.post("/admin/keys", json=body, headers=env.session_headers(cookie))
    assert no_header.status_code == 403 and no_header.json()["error"]["code"] == "csrf_failed"
    wrong = env.client.post("/admin/keys", json=body, headers=env.session_headers(cookie, "x" * 43))
    assert wrong.status_code == 403
    other_cookie, other_csrf = env.login("admin", env.admin_password)
    assert other_csrf != csrf
    crossed = env.client.post("/admin/keys", json=body, headers=env.session_headers(cookie, other_csrf))
    assert crossed.status_code == 403  # a token from another session does not fit this one
    ok = env.client.post("/admin/keys", json=body, headers=env.session_headers(cookie, csrf))
    assert ok.status_code == 201
    env.secrets.append(ok.json()["key"])
    audit = env.admin("GET", "/admin/audit", params={"action": "keys.create"})
    assert audit[0]["actor"] == "user:admin" and audit[0]["target"] == "via-session" and audit[0]["client_ip"]


def test_sessions_cannot_call_inference_and_keys_cannot_log_out(env: AccessEnv) -> None:
    cookie, csrf = env.login("admin", env.admin_password)
    for path in ("/v1/completions", "/v1/chat/completions", "/v1/embeddings"):
        resp = env.client.post(path, json={"model": "m"}, headers=env.session_headers(cookie, csrf))
        assert resp.status_code == 401, (path, resp.text)
    assert env.client.get("/v1/models", headers=env.session_headers(cookie, csrf)).status_code == 401
    assert env.client.post("/auth/logout", headers=env.auth(env.admin_token)).status_code == 401


def test_password_change_ends_other_sessions_and_logout_clears_cookies(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    password = env.user("alice", "member")
    old_cookie, _ = env.login("alice", password)
    cookie, csrf = env.login("alice", password)
    short = env.client.post(
        "/auth/password",
        json={"current_password": password, "new_password": "short"},
        headers=env.session_headers(cookie, csrf),
    )
    assert short.status_code == 400
    new_password = "a-much-longer-new-password"
    env.secrets.append(new_password)
    resp = env.client.post(
        "/auth/password",
        json={"current_password": password, "new_password": new_password},
        headers=env.session_headers(cookie, csrf),
    )
    assert resp.status_code == 200
    fresh = resp.cookies[SESSION_COOKIE]
    env.client.cookies.clear()
    assert env.client.get("/auth/me", headers=env.session_headers(old_cookie)).status_code == 401
    assert env.client.get("/auth/me", headers=env.session_headers(fresh)).status_code == 200
    assert env.client.post("/auth/login", json={"username": "alice", "password": password}).status_code == 401
    out = env.client.post("/auth/logout", headers=env.session_headers(fresh, resp.json()["csrf_token"]))
    assert out.status_code == 204 and 'cortex_session=""' in out.headers["set-cookie"]
    env.client.cookies.clear()


def test_disabled_user_loses_session(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    password = env.user("bob", "viewer")
    cookie, _ = env.login("bob", password)
    env.admin("PATCH", "/admin/users/bob", json={"is_active": False})
    assert env.client.get("/auth/me", headers=env.session_headers(cookie)).status_code == 401


def test_secure_cookie_behind_a_trusted_tls_proxy(tmp_path: Path) -> None:
    for env in make_env(tmp_path / "h", peer=("10.9.0.2", 40000), trusted_proxies=["10.9.0.0/24"]):
        via_proxy = env.client.post(
            "/auth/login",
            json={"username": "admin", "password": env.admin_password},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"},
        )
        assert "secure" in via_proxy.headers["set-cookie"].lower()
        audit = env.admin("GET", "/admin/audit", params={"action": "auth.login"})
        assert audit[0]["client_ip"] == "203.0.113.5"
    for env in make_env(tmp_path / "h2", peer=("10.9.0.2", 40000)):  # not trusted: header ignored
        direct = env.client.post(
            "/auth/login",
            json={"username": "admin", "password": env.admin_password},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "secure" not in direct.headers["set-cookie"].lower()


def test_sessions_are_listed_and_ended_by_their_user(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    password = env.user("sam", "member")
    laptop, _ = env.login("sam", password)
    phone, phone_csrf = env.login("sam", password)
    listed = env.client.get("/auth/sessions", headers=env.session_headers(phone)).json()
    assert len(listed) == 2 and [s["current"] for s in listed] == [False, True]
    laptop_id = listed[0]["id"]
    ended = env.client.delete(f"/auth/sessions/{laptop_id}", headers=env.session_headers(phone, phone_csrf))
    assert ended.status_code == 204
    assert env.client.get("/auth/me", headers=env.session_headers(laptop)).status_code == 401
    assert env.client.get("/auth/me", headers=env.session_headers(phone)).status_code == 200
    # another user's session id is not yours to end (and is not told apart from a missing one)
    other, other_csrf = env.login("admin", env.admin_password)
    theirs = env.client.get("/auth/sessions", headers=env.session_headers(other)).json()[0]["id"]
    refused = env.client.delete(f"/auth/sessions/{theirs}", headers=env.session_headers(phone, phone_csrf))
    assert refused.status_code == 404
    assert env.client.get("/auth/me", headers=env.session_headers(other)).status_code == 200


def test_role_change_deactivation_and_admin_end_sessions_at_once(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    password = env.user("rita", "admin")
    first, _ = env.login("rita", password)
    env.admin("PATCH", "/admin/users/rita", json={"role": "viewer"})  # demoted: the admin session ends
    assert env.client.get("/auth/me", headers=env.session_headers(first)).status_code == 401
    second, _ = env.login("rita", password)
    assert env.client.get("/auth/me", headers=env.session_headers(second)).json()["role"] == "viewer"
    env.admin("DELETE", "/admin/users/rita/sessions")
    assert env.client.get("/auth/me", headers=env.session_headers(second)).status_code == 401
    third, _ = env.login("rita", password)
    env.admin("PATCH", "/admin/users/rita", json={"password": "an-admin-set-password"})
    assert env.client.get("/auth/me", headers=env.session_headers(third)).status_code == 401


def test_idle_and_absolute_timeouts_end_sessions(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    from datetime import timedelta

    from cortex_server.db.models import AuthSession

    password = env.user("ida", "viewer")
    idle, _ = env.login("ida", password)
    old, _ = env.login("ida", password)
    ctx = env.app.state.cortex
    with ctx.session_factory() as session:
        rows = session.query(AuthSession).order_by(AuthSession.id).all()[-2:]
        rows[0].last_seen_at -= timedelta(seconds=env.settings.session_idle_s + 1)  # idle too long
        rows[1].expires_at = rows[1].created_at  # past its absolute end
        session.commit()
    ctx.authenticator.invalidate()
    assert env.client.get("/auth/me", headers=env.session_headers(idle)).status_code == 401
    assert env.client.get("/auth/me", headers=env.session_headers(old)).status_code == 401


async def _backs_off(throttle: LoginThrottle, now: list[float]) -> None:
    for _ in range(2):
        await throttle.check(username="u", ip="10.0.0.1")
        await throttle.failed(username="u", ip="10.0.0.1")
    await throttle.check(username="u", ip="10.0.0.1")  # 2 failures: still free
    waits = []
    for _ in range(4):
        await throttle.failed(username="u", ip="10.0.0.1")
        with pytest.raises(RateLimited) as refused:
            await throttle.check(username="u", ip="10.0.0.9")  # another address: the username still waits
        waits.append(refused.value.retry_after_s)
        now[0] += 100
    assert waits == [1, 2, 4, 8]
    await throttle.succeeded(username="u")
    await throttle.check(username="u", ip="10.0.0.9")
    await throttle.failed(username="v", ip="10.0.0.1")  # the address's 7th failure (free: 5)
    with pytest.raises(RateLimited):  # the address waits, whatever username it tries
        await throttle.check(username="someone-else", ip="10.0.0.1")


async def test_login_throttle_backs_off_exponentially_per_user_and_per_address() -> None:
    now = [1000.0]
    await _backs_off(LoginThrottle(free=3, free_ip=5, base_s=1.0, max_s=60, clock=lambda: now[0]), now)
    forgetful = LoginThrottle(free=1, forget_s=10, clock=lambda: now[0])
    await forgetful.failed(username="w", ip="10.0.0.2")
    now[0] += 11  # forgotten after forget_s: the next failure counts from 1 again
    await forgetful.failed(username="w", ip="10.0.0.2")
    now[0] += 1.01
    await forgetful.check(username="w", ip="10.0.0.2")


@pytest.mark.redis
async def test_daemons_sharing_redis_share_the_login_budget(redis_url: str) -> None:
    now = [time.time()]
    prefix = f"cortex-test-{uuid.uuid4().hex}:"
    a, b = (
        LoginThrottle(
            store=RedisFailures(url=redis_url, prefix=prefix, clock=lambda: now[0]),
            free=3,
            free_ip=5,
            base_s=1.0,
            max_s=60,
            clock=lambda: now[0],
        )
        for _ in range(2)
    )
    try:
        await _backs_off(a, now)
        with pytest.raises(RateLimited):  # the other daemon sees the same failures
            await b.check(username="someone-else", ip="10.0.0.1")
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_redis_throttles_in_memory() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    now = [1000.0]
    throttle = LoginThrottle(
        store=RedisFailures(url=dead, prefix="x:"),
        free=3,
        free_ip=5,
        base_s=1.0,
        max_s=60,
        clock=lambda: now[0],
    )
    await _backs_off(throttle, now)
    await throttle.close()


def test_overlong_passwords_are_refused_before_hashing(env: AccessEnv) -> None:
    huge = env.client.post(
        "/admin/users",
        headers=env.auth(env.admin_token),
        json={"username": "big", "password": "x" * (1024 * 1024)},
    )
    assert huge.status_code == 400 and huge.json()["error"]["param"] == "password"
    wide = env.client.post(
        "/admin/users", headers=env.auth(env.admin_token), json={"username": "wide", "password": "😀" * 1000}
    )  # 1,000 characters, 4,000 bytes
    assert wide.status_code == 400 and "1024 bytes" in wide.json()["error"]["message"]
    login = env.client.post("/auth/login", json={"username": "admin", "password": "x" * 5000})
    assert login.status_code == 400
