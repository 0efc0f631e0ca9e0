"""Two daemons behind nginx on one PostgreSQL database and one Redis: one is SIGKILLed under load.

The model is a remote engine pointing at an upstream on loopback (tests/support/openai_upstream.py),
so both daemons can route to it; exactly one of them supervises it (the lease). The test kills
the supervising daemon while clients keep sending through nginx and checks that the other one
takes the model over (and never drove it while the first lived), that clients keep being served,
and that every successful response has its usage row once the killed daemon is back.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from cortex_server.db.models import UsageRecord
from tests.conftest import PG_URL_ENV, REDIS_URL_ENV, _fresh_postgres_database
from tests.scaleout.cluster import NGINX, Cluster, Daemon
from tests.support.openai_upstream import OpenAIUpstream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.path.exists(NGINX), reason="nginx is not installed (install.sh --dev installs it)"
    ),
]

KEY = "sk-upstream-scaleout-" + "y" * 16
RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: far-chat
spec:
  engine: remote
  served_name: far-chat
  args:
    url: {url}
    key_file: upstream.key
    model: upstream-model
  timeouts:
    load_s: 60
    request_s: 30
"""
# The usage journal (issue #11: "durable metering") keeps rows of completed responses across a
# SIGKILL; until it lands, rows still in the killed daemon's memory are lost (defect 4 of #11).
JOURNAL = importlib.util.find_spec("cortex_server.services.metering.journal") is not None
CLIENTS = 6
RPM = 10
REVOCATION_BOUND_S = 2.0  # README/docs: pushed through Redis at once; the key cache's TTL without
LOAD_S = 8.0
KILL_AT_S = 2.5


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not os.environ.get(PG_URL_ENV) or not os.environ.get(REDIS_URL_ENV):
        pytest.skip(f"{PG_URL_ENV} and {REDIS_URL_ENV} are needed")
    for database_url in _fresh_postgres_database():
        c = Cluster(root=tmp_path, database_url=database_url, redis_url=os.environ[REDIS_URL_ENV])
        try:
            yield c
        finally:
            c.close()


def write_key(home: Path) -> None:
    path = home / "secrets" / "upstream.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(KEY + "\n")
    path.chmod(0o600)


def supervising(daemon: Daemon) -> int:
    return len(daemon.log_lines("(lease taken)"))


def drives(daemon: Daemon) -> int:
    return len(daemon.log_lines("→ starting"))


def limits_are_exact_and_revocation_reaches_both(d0: Daemon, d1: Daemon, admin: dict[str, str]) -> None:
    """One key's requests/min is shared by both daemons (Redis); a revocation made on one daemon
    is refused by the other within the documented bound (REVOCATION_BOUND_S)."""
    created = httpx.post(
        f"{d0.url}/admin/keys",
        json={"name": "shared", "scopes": ["inference"], "rpm_limit": RPM},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    body = {"model": "far-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    answers = Counter(
        httpx.post(f"{d.url}/v1/chat/completions", json=body, headers=key, timeout=30).status_code
        for _ in range(RPM)
        for d in (d0, d1)
    )
    assert answers == Counter({200: RPM, 429: RPM})  # exact across the two daemons
    revoked = httpx.post(f"{d0.url}/admin/keys/{created.json()['id']}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    deadline = time.monotonic() + REVOCATION_BOUND_S
    while httpx.get(f"{d1.url}/v1/models", headers=key).status_code != 401:
        assert time.monotonic() < deadline, "the other daemon still accepts a revoked key"
        time.sleep(0.05)


def test_the_survivor_takes_over_supervision_and_every_response_has_its_row(
    cluster: Cluster,
) -> None:
    upstream = OpenAIUpstream(model="upstream-model", key=KEY).start()
    try:
        settings = {
            "remote_engine_hosts": '["127.0.0.1"]',
            "health_poll_interval_s": "0.2",
            "usage_flush_interval_s": "0.1",
        }
        d0, d1 = cluster.add_daemons(2, **settings)
        for d in (d0, d1):
            write_key(d.home)
        d0.start()  # the first start creates the admin; then the second joins the same database
        d1.start()
        cluster.start_nginx()
        admin = {"Authorization": f"Bearer {(d0.home / 'admin.token').read_text().strip()}"}
        created = httpx.post(
            f"{cluster.url}/admin/models", json={"yaml": RECIPE.format(url=upstream.url), "start": True},
            headers=admin, timeout=30,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 30
        while httpx.get(f"{cluster.url}/admin/models/far-chat", headers=admin).json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        while supervising(d0) + supervising(d1) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        holder, survivor = (d0, d1) if supervising(d0) else (d1, d0)
        # The state in the database says running; the other daemon routes once its next tick has
        # read that row (followed_models): wait until each daemon itself has a healthy replica.
        for d in (d0, d1):
            while (
                httpx.get(f"{d.url}/v1/models/far-chat", headers=admin).json().get("healthy_replicas", 0) < 1
            ):
                assert time.monotonic() < deadline, f"{d.name} never routes far-chat"
                time.sleep(0.1)
        assert supervising(survivor) == 0 and drives(survivor) == 0  # one supervisor while both live
        assert drives(holder) == 1
        limits_are_exact_and_revocation_reaches_both(d0, d1, admin)

        statuses: Counter[int] = Counter()
        ok_after_kill = 0
        killed_at: list[float] = []
        lock = threading.Lock()
        body = {"model": "far-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        start = time.monotonic()

        def client() -> None:
            nonlocal ok_after_kill
            with httpx.Client(base_url=cluster.url, headers=admin, timeout=30) as http:
                while time.monotonic() - start < LOAD_S:
                    try:
                        status = http.post("/v1/chat/completions", json=body).status_code
                    except httpx.TransportError:
                        status = 0
                    with lock:
                        statuses[status] += 1
                        if status == 200 and killed_at and time.monotonic() > killed_at[0] + 1:
                            ok_after_kill += 1

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(KILL_AT_S)
        holder.kill()
        killed_at.append(time.monotonic())
        for t in threads:
            t.join()

        # The survivor took the model over, and clients kept being served through it.
        assert supervising(survivor) == 1 and drives(survivor) == 1, survivor.log_lines("model")
        assert ok_after_kill > 0, statuses
        assert httpx.get(f"{cluster.url}/admin/models/far-chat", headers=admin).json()["state"] == "running"
        ok = statuses[200] + RPM  # and the RPM answers of the limits check
        print(f"\nscale-out: {sum(statuses.values())} requests, by status {dict(statuses)}, upstream saw "
              f"{upstream.completions}")  # fmt: skip

        # The killed daemon comes back (as systemd would restart it): it does not drive the model
        # (the survivor holds it) and whatever it had made durable reaches the database.
        holder.start()
        engine = create_engine(cluster.database_url)
        try:
            rows = -1
            deadline = time.monotonic() + 20
            while rows < ok and time.monotonic() < deadline:
                with engine.connect() as conn:
                    rows = conn.execute(
                        select(func.count()).select_from(UsageRecord).where(UsageRecord.model == "far-chat")
                    ).scalar_one()
                time.sleep(0.2)
        finally:
            engine.dispose()
        print(f"scale-out: usage rows {rows} for {ok} successful responses")
        assert drives(survivor) == 1 and drives(holder) == 1  # the restarted daemon drives nothing
        if not JOURNAL and rows < ok:
            pytest.xfail(f"#11 defect 4: {ok - rows} of {ok} rows died in the killed daemon's memory")
        # Every response a client received has its row. A record made durable just before the
        # SIGKILL may belong to a response whose bytes died with the daemon: at most one per client.
        assert ok <= rows <= ok + CLIENTS, (rows, ok)
    finally:
        upstream.stop()
