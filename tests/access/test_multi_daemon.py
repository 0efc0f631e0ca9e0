"""Two real daemon processes sharing one database and one Redis: exact limits, revocation
within seconds everywhere, Redis dying mid-test, and no secret in any log line.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import load_settings
from tests.access.conftest import Daemon

pytestmark = pytest.mark.slow


def _prepare(home: Path) -> tuple[str, str]:
    boot = prepare_database(load_settings(home=home))
    assert boot.admin_password
    return boot.admin_password, (home / "admin.token").read_text().strip()


def _admin(d: Daemon, token: str, method: str, path: str, **kw: Any) -> Any:
    resp = httpx.request(method, d.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw)
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else None


async def _burst(urls: list[str], key: str, n: int, *, sleep_s: float = 0.0) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        calls = [
            client.post(
                urls[i % len(urls)] + "/test/inference",
                json={"model": "m", "sleep_s": sleep_s},
                headers={"Authorization": f"Bearer {key}"},
            )
            for i in range(n)
        ]
        return [r.status_code for r in await asyncio.gather(*calls)]


@pytest.mark.redis
def test_exact_limits_and_fast_revocation_across_two_daemons(
    tmp_path: Path, redis_url: str, daemons: Callable[..., Daemon]
) -> None:
    home = tmp_path / "home"
    _, token = _prepare(home)
    prefix = f"cortex-test-{uuid.uuid4().hex}:"
    a = daemons(home, log_path=tmp_path / "a.log", CORTEX_REDIS_URL=redis_url, CORTEX_REDIS_KEY_PREFIX=prefix)
    b = daemons(home, log_path=tmp_path / "b.log", CORTEX_REDIS_URL=redis_url, CORTEX_REDIS_KEY_PREFIX=prefix)

    limit = 9
    key = _admin(
        a, token, "POST", "/admin/keys", json={"name": "rpm", "scopes": ["inference"], "rpm_limit": limit}
    )["key"]
    statuses = asyncio.run(_burst([a.url, b.url], key, 40))
    assert statuses.count(200) == limit and statuses.count(429) == 40 - limit, statuses

    conc = _admin(
        a, token, "POST", "/admin/keys", json={"name": "conc", "scopes": ["inference"], "max_concurrent": 3}
    )
    statuses = asyncio.run(_burst([a.url, b.url], conc["key"], 12, sleep_s=2.0))
    assert statuses.count(200) == 3 and statuses.count(429) == 9, statuses
    assert asyncio.run(_burst([a.url, b.url], conc["key"], 2)) == [200, 200]  # slots came back

    # revocation on A is seen by B at once (pub/sub), well inside the 2 s TTL bound
    live = _admin(a, token, "POST", "/admin/keys", json={"name": "live", "scopes": ["inference"]})["key"]
    assert asyncio.run(_burst([b.url], live, 1)) == [200]  # B has it cached now
    _admin(a, token, "POST", "/admin/keys/live/revoke")
    started = time.monotonic()
    while asyncio.run(_burst([b.url], live, 1)) != [401]:
        assert time.monotonic() - started < 2.0, "B still accepts a revoked key"
        time.sleep(0.02)
    assert time.monotonic() - started < 1.0  # the TTL alone could take up to 2 s


def test_redis_dying_mid_test_fails_as_configured_never_500(
    tmp_path: Path, private_redis: tuple[str, Any], daemons: Callable[..., Daemon]
) -> None:
    url, redis_proc = private_redis
    home = tmp_path / "home"
    _, token = _prepare(home)
    closed = daemons(home, log_path=tmp_path / "closed.log", CORTEX_REDIS_URL=url)
    opened = daemons(
        home, log_path=tmp_path / "open.log", CORTEX_REDIS_URL=url, CORTEX_RATELIMIT_FAIL_MODE="open"
    )
    limited = _admin(
        closed, token, "POST", "/admin/keys", json={"name": "l", "scopes": ["inference"], "rpm_limit": 1000}
    )
    free = _admin(closed, token, "POST", "/admin/keys", json={"name": "f", "scopes": ["inference"]})
    both = [closed.url, opened.url]
    assert asyncio.run(_burst(both, limited["key"], 4)) == [200] * 4
    assert httpx.get(closed.url + "/ready").status_code == 200

    redis_proc.kill()
    redis_proc.wait()
    assert asyncio.run(_burst([closed.url], limited["key"], 3)) == [503] * 3
    refused = httpx.post(
        closed.url + "/test/inference", json={}, headers={"Authorization": f"Bearer {limited['key']}"}
    )
    assert int(refused.headers["retry-after"]) >= 1  # the fail-closed 503 says when to retry
    for d in (closed, opened):  # a configured Redis that is down: not ready
        ready = httpx.get(d.url + "/ready")
        assert ready.status_code == 503 and ready.json()["reason"] == "redis unreachable"
    assert asyncio.run(_burst([opened.url], limited["key"], 3)) == [200] * 3
    assert asyncio.run(_burst(both, free["key"], 4)) == [200] * 4  # no limits: Redis not needed
    body = httpx.post(
        closed.url + "/test/inference", json={}, headers={"Authorization": f"Bearer {limited['key']}"}
    )
    assert body.json()["error"]["code"] == "ratelimiter_unavailable"
    # admin calls that publish invalidations keep working without Redis
    _admin(closed, token, "POST", "/admin/keys/f/revoke")


def test_no_secret_ever_reaches_the_logs(tmp_path: Path, daemons: Callable[..., Daemon]) -> None:
    home = tmp_path / "home"
    admin_password, token = _prepare(home)
    d = daemons(home, log_path=tmp_path / "d.log")
    secrets = [admin_password, token]
    key = _admin(
        d, token, "POST", "/admin/keys", json={"name": "k", "scopes": ["inference"], "rpm_limit": 1}
    )["key"]
    secrets.append(key)
    user_pw = "user-password-" + uuid.uuid4().hex
    secrets.append(user_pw)
    _admin(d, token, "POST", "/admin/users", json={"username": "u1", "role": "member", "password": user_pw})
    generated = _admin(d, token, "POST", "/admin/users", json={"username": "u2", "role": "viewer"})[
        "password"
    ]
    secrets.append(generated)
    wrong = "wrong-password-" + uuid.uuid4().hex
    secrets.append(wrong)
    with httpx.Client(base_url=d.url, timeout=10) as c:
        assert c.post("/auth/login", json={"username": "u1", "password": wrong}).status_code == 401
        login = c.post("/auth/login", json={"username": "u1", "password": user_pw})
        assert login.status_code == 200
        cookie, csrf = login.cookies["cortex_session"], login.json()["csrf_token"]
        secrets += [cookie, csrf]
        new_pw = "new-password-" + uuid.uuid4().hex
        secrets.append(new_pw)
        changed = c.post(
            "/auth/password",
            json={"current_password": user_pw, "new_password": new_pw},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200
        for _ in range(3):  # the second one is rate limited, the key is then bad
            c.post("/test/inference", json={"model": "m"}, headers={"Authorization": f"Bearer {key}"})
        c.post("/test/inference", json={}, headers={"Authorization": f"Bearer {key}x"})
        c.get("/admin/keys", headers={"Authorization": f"Bearer {token}"})
        # the API never shows a secret again after creation
        listed = c.get("/admin/keys", headers={"Authorization": f"Bearer {token}"}).text
        users = c.get("/admin/users", headers={"Authorization": f"Bearer {token}"}).text
        assert not any(s in listed or s in users for s in secrets)
    _admin(d, token, "POST", "/admin/keys/k/revoke")
    from tests.access.conftest import stop_daemon

    stop_daemon(d)
    logs = d.log_path.read_text() + "".join(p.read_text() for p in (home / "logs").glob("*.log*"))
    assert "cortexd" in logs or "Application startup" in logs  # we really captured the daemon's output
    leaked = [s[:6] + "…" for s in secrets if s in logs]
    assert not leaked, f"secrets found in the logs: {leaked}"


async def test_a_stream_holds_its_concurrency_slot_until_it_ends(
    tmp_path: Path, daemons: Callable[..., Daemon]
) -> None:
    """The gateway contract for streams: the slot taken by require_inference lasts as long as the stream."""
    home = tmp_path / "home"
    _, token = _prepare(home)
    d = daemons(home, log_path=tmp_path / "d.log")  # no Redis: the in-process backend
    key = _admin(
        d, token, "POST", "/admin/keys", json={"name": "s", "scopes": ["inference"], "max_concurrent": 1}
    )
    h = {"Authorization": f"Bearer {key['key']}"}
    async with httpx.AsyncClient(base_url=d.url, timeout=10) as client:
        async with client.stream("POST", "/test/inference-stream", json={"sleep_s": 1.5}, headers=h) as first:
            assert first.status_code == 200
            await asyncio.sleep(0.3)  # mid-stream
            second = await client.post("/test/inference-stream", json={"sleep_s": 0}, headers=h)
            assert second.status_code == 429, second.text
            async for _ in first.aiter_bytes():
                pass
        third = await client.post("/test/inference-stream", json={"sleep_s": 0}, headers=h)
        assert third.status_code == 200, third.text
