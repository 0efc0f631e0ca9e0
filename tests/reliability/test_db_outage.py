"""Defect 2 of issue #11: PostgreSQL down was a total outage (9,592 of 9,592 requests got 503).

Two daemons share a PostgreSQL and a Redis of the test's own. Keys they verified before the
outage keep being served from last-known-good while PostgreSQL is stopped (every request
200, none 5xx); a valid key neither daemon has seen gets a retryable 503
`database_unavailable` (never 401: it may be valid); a key revoked on one daemon just before
the outage is refused by the other, which learned it only through Redis; and every response
served during the outage has its usage row once PostgreSQL is back.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path

import httpx

from cortex_server.core.auth import CACHE_TTL_S
from tests.conftest import free_port
from tests.gateway.gateway_support import PrivatePostgres
from tests.reliability.conftest import PrivateRedis, Profile, needs_pg_binaries
from tests.reliability.daemon_process import DaemonProcess
from tests.reliability.load import Load, metric, stored_ids, wait_until
from tests.support.openai_upstream import OpenAIUpstream

MODEL = "outage-model"


def chat(base: str, key: str, *, stream: bool = False) -> httpx.Response:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "stream": stream,
    }
    return httpx.post(
        f"{base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


@needs_pg_binaries
def test_known_keys_are_served_through_a_postgresql_outage_and_every_row_arrives(
    tmp_path: Path, private_pg: PrivatePostgres, private_redis: PrivateRedis, profile: Profile
) -> None:
    upstream = OpenAIUpstream(model=MODEL).start()
    shared = {
        "database_url": private_pg.url,
        "redis_url": private_redis.url,
        "redis_key_prefix": f"cortex-outage-{secrets.token_hex(4)}:",
        "secret_key": secrets.token_hex(32),  # one deployment: the key hashes agree
    }
    base = f"http://127.0.0.1:{upstream.port}"
    a = DaemonProcess(home=tmp_path / "a", port=free_port(), model=MODEL, upstream=base, **shared)
    b = DaemonProcess(home=tmp_path / "b", port=free_port(), model=MODEL, upstream=base, **shared)
    a.start()
    b.start()
    load: Load | None = None
    try:
        admin = {"authorization": f"Bearer {a.admin_key}"}

        def new_key(name: str) -> str:
            resp = httpx.post(
                f"{a.url}/admin/keys", json={"name": name, "scopes": ["inference"]}, headers=admin
            )
            assert resp.status_code == 201, resp.text
            return resp.json()["key"]

        served, revoked, unseen = new_key("served"), new_key("revoked"), new_key("unseen")
        warm_ids = []
        for daemon in (a, b):  # both daemons verify `served` and `revoked` with the database
            for key in (served, revoked):
                resp = chat(daemon.url, key)
                assert resp.status_code == 200, resp.text
                warm_ids.append(resp.headers["x-request-id"])
        resp = httpx.post(f"{a.url}/admin/keys/revoked/revoke", headers=admin)
        assert resp.status_code == 200, resp.text
        # b's fresh cache of `revoked` lapses by TTL; what b still knows of it is last-known-good,
        # which only the Redis message can have dropped (b never asks the database about it again)
        time.sleep(CACHE_TTL_S + 0.5)

        private_pg.stop()  # PostgreSQL is gone (immediate shutdown: connections refused)
        load = Load([a.url, b.url], served, MODEL, clients=profile.clients, streamed=False).start()
        outage_started = time.monotonic()
        probes: dict[str, list[tuple[int, str | None]]] = {"revoked": [], "unseen": [], "stream": []}
        while time.monotonic() - outage_started < profile.fault_s:
            for daemon in (a, b):
                for name, key in (("revoked", revoked), ("unseen", unseen)):
                    resp = chat(daemon.url, key)
                    code = resp.json().get("error", {}).get("code") if resp.status_code != 200 else None
                    probes[name].append((resp.status_code, code))
                    if resp.status_code == 503:
                        assert resp.headers.get("retry-after"), "a 503 during the outage says when to retry"
                resp = chat(daemon.url, served, stream=True)
                probes["stream"].append((resp.status_code, None))
                if resp.status_code == 200 and b"data: [DONE]" in resp.content:
                    load.completed.append(resp.headers["x-request-id"])  # the stream's row must arrive too
            time.sleep(0.2)
        load.join()
        outage_ok = len(load.completed)
        statuses, codes = dict(load.statuses), dict(load.errors)
        stale_verifications = [metric(d.url, "cortex_auth_stale_verifications") for d in (a, b)]

        private_pg.start()
        expected = set(warm_ids) | set(load.completed)
        wait_until(lambda: expected <= stored_ids(private_pg.url), timeout_s=30, step_s=0.3)
        rows = stored_ids(private_pg.url)
        after = [chat(d.url, unseen).status_code for d in (a, b)]  # new keys work once the DB is back
    finally:
        if load is not None:
            load.join()
        b.stop()
        a.stop()
        upstream.stop()

    missing = set(load.completed) - rows
    print(
        f"PostgreSQL outage ({profile.name}, {profile.fault_s:.0f} s, {profile.clients} clients, 2 daemons): "
        f"cached key sent {sum(statuses.values())}, by status {statuses} {codes}; "
        f"streams {Counter(s for s, _ in probes['stream'])}; revoked key {Counter(probes['revoked'])}; "
        f"unseen key {Counter(probes['unseen'])}; 200s during the outage {outage_ok}, "
        f"their rows after PostgreSQL returned {outage_ok - len(missing)}"
    )
    assert statuses.get("200", 0) > 0 and set(statuses) == {"200"}, (
        f"cached key not always served: {statuses}"
    )
    assert {s for s, _ in probes["stream"]} == {200}
    assert set(probes["revoked"]) == {(503, "database_unavailable")}, probes["revoked"]
    assert set(probes["unseen"]) == {(503, "database_unavailable")}, probes["unseen"]
    assert not missing, f"{len(missing)} of {outage_ok} responses served during the outage have no row"
    assert after == [200, 200]
    assert all(n and n > 0 for n in stale_verifications), (
        f"the outage is visible in /metrics: {stale_verifications}"
    )
