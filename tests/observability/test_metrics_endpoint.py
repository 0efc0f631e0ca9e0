"""GET /metrics: who may read it, what it holds, and rejections counted end to end."""

from __future__ import annotations

import csv
import io
import json
import re
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from cortex_server.services.observability.host import Nvml
from cortex_server.services.registry import ReplicaEndpoint, ServedModel
from tests.access.conftest import make_env
from tests.access.inference_route import TEST_INFERENCE_PATH
from tests.conftest import free_port
from tests.observability.promtext import value

REMOTE = ("203.0.113.9", 40000)
daemon = contextmanager(make_env)


def test_loopback_reads_without_credentials_others_need_the_scope(cortex_home: Path) -> None:
    with daemon(cortex_home / "a") as env:
        resp = env.client.get("/metrics")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        assert (
            value(resp.text, "cortex_host_cpu_count") and value(resp.text, "cortex_usage_database_up") == 1.0
        )
        reader, app_key = env.key("scraper", ["metrics:read"]), env.key("app", ["inference"])
        remote = TestClient(env.app, client=REMOTE)  # the same daemon, called from another host
        assert remote.get("/metrics").status_code == 401
        assert remote.get("/metrics", headers=env.auth(app_key)).status_code == 403
        assert remote.get("/metrics", headers=env.auth(reader)).status_code == 200
    with daemon(cortex_home / "b", metrics_access="scope") as env:
        assert env.client.get("/metrics").status_code == 401  # even from loopback
    with daemon(cortex_home / "c", peer=REMOTE, metrics_access="open") as env:
        assert env.client.get("/metrics").status_code == 200
    with daemon(cortex_home / "d", metrics_enabled=False) as env:
        assert env.client.get("/metrics").status_code == 404


def test_a_separate_listen_address_serves_the_same_text(cortex_home: Path) -> None:
    port = free_port()
    with daemon(cortex_home, metrics_listen=f"127.0.0.1:{port}") as env:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert value(text, "cortex_host_cpu_count") == value(
            env.client.get("/metrics").text, "cortex_host_cpu_count"
        )
        assert value(text, "cortex_ratelimit_rejections_total", kind="requests") == 0.0
    try:
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        raise AssertionError("the listener outlived the daemon")
    except httpx.TransportError:
        pass


def test_registry_state_is_exposed_per_model_and_replica(cortex_home: Path) -> None:
    with daemon(cortex_home) as env:
        registry = env.app.state.cortex.registry
        replicas = [
            ReplicaEndpoint(model_id=1, model_name="m", replica_index=i, base_url=f"http://127.0.0.1:{9 + i}")
            for i in range(2)
        ]
        replicas[0].healthy, replicas[0].outstanding = True, 3
        replicas[1].consecutive_failures = 99  # tripped breaker
        registry.put(
            ServedModel(served_name="served-m", engine="llamacpp", state="running", replicas=replicas)
        )
        text = env.client.get("/metrics").text
        assert value(text, "cortex_model_healthy_replicas", model="served-m") == 1.0
        assert value(text, "cortex_requests_in_flight", model="served-m", replica="m/0") == 3.0
        assert value(text, "cortex_replica_breaker_open", model="served-m", replica="m/0") == 0.0
        assert value(text, "cortex_replica_breaker_open", model="served-m", replica="m/1") == 1.0
        # no GPU means no GPU series (and not an error); with one, its memory is there
        gpus = Nvml().gpus()
        assert ("cortex_gpu_memory_total_bytes" in text) == bool(gpus)


def test_rejections_are_counted_and_reported_by_key_and_org(cortex_home: Path) -> None:
    with daemon(cortex_home) as env:
        limited = env.key("limited", ["inference"], rpm_limit=1)
        no_scope = env.key("reader", ["models:read"])
        body = {"model": "m", "messages": []}
        for _ in range(3):
            assert (
                env.client.post(TEST_INFERENCE_PATH, json=body, headers=env.auth("sk-wrong")).status_code
                == 401
            )
        assert env.client.post(TEST_INFERENCE_PATH, json=body, headers=env.auth(no_scope)).status_code == 403
        assert env.client.post(TEST_INFERENCE_PATH, json=body, headers=env.auth(limited)).status_code == 200
        assert env.client.post(TEST_INFERENCE_PATH, json=body, headers=env.auth(limited)).status_code == 429
        text = env.client.get("/metrics").text
        assert value(text, "cortex_auth_rejections_total", status="401", reason="invalid_api_key") == 3.0
        assert value(text, "cortex_auth_rejections_total", status="403", reason="permission_denied") == 1.0
        assert value(text, "cortex_ratelimit_rejections_total", kind="requests") == 1.0

        ctx = env.app.state.cortex
        env.client.portal.call(ctx.rejections.flush)  # type: ignore[union-attr]
        by_key = env.admin("GET", "/admin/usage", params={"by": "key", "since": "1h"})
        keys = {k["name"]: k["id"] for k in env.admin("GET", "/admin/keys")}
        rows = {r["key"]: r for r in by_key["data"]}
        assert rows[keys["limited"]]["rejected_429"] == 1 and rows[keys["reader"]]["rejected_403"] == 1
        assert None not in rows  # 401s carry no org: only an operator's all-orgs view has them
        every = env.admin("GET", "/admin/usage", params={"by": "org", "since": "1h", "all_orgs": "true"})
        assert {r["org"]: r["rejected_401"] for r in every["data"]}[None] == 3

        csv_text = env.client.get(
            "/admin/usage",
            params={"by": "key", "since": "1h", "format": "csv"},
            headers=env.auth(env.admin_token),
        ).text
        parsed = list(csv.DictReader(io.StringIO(csv_text)))
        assert [dict(r) for r in parsed] == [
            {k: "" if v is None else str(v) for k, v in row.items()} for row in by_key["data"]
        ]

        env.org("tenant")
        tenant_admin = env.key("tenant-admin", ["admin"], org="tenant")
        resp = env.client.get("/admin/usage", params={"all_orgs": "true"}, headers=env.auth(tenant_admin))
        assert resp.status_code == 403
        resp = env.client.get("/admin/usage", params={"since": "yesterday"}, headers=env.auth(tenant_admin))
        assert resp.status_code == 400 and "since" in resp.json()["error"]["message"]


def test_the_shipped_dashboard_and_readme_name_only_metrics_we_expose(cortex_home: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "deploy" / "grafana" / "cortex-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    readme = (
        (root / "README.md").read_text().split("## Metrics and usage analytics", 1)[1].split("\n## ", 1)[0]
    )
    with daemon(cortex_home) as env:
        text = env.client.get("/metrics").text
    exposed = set(re.findall(r"^# TYPE (\w+)", text, re.M))
    exposed |= {f"{n}_{suffix}" for n in exposed for suffix in ("bucket", "count", "sum")}
    for source, names in (("dashboard", exprs), ("README", readme)):
        found = set(re.findall(r"\b(cortex_[a-z_]+)", names))
        assert len(found) > 20, source
        for name in found:
            if name.startswith("cortex_gpu_") or name == "cortex_replica_load_duration_seconds":
                continue  # only with a GPU / a supervised replica that became ready (test_prometheus_real)
            if name == "cortex_metrics_workers_missing":
                continue  # only under serve --workers N (tests/server/test_workers.py)
            assert name in exposed, f"{source} names {name}, which /metrics does not expose"
