"""`cortexctl usage` and `cortexctl top` against a live daemon (the real CLI in a subprocess)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from cortex_server.services.registry import ReplicaEndpoint, ServedModel
from cortexctl.cli.top import render
from cortexctl.core.client import AdminClient
from cortexctl.core.observe import top_snapshot
from tests.gateway.gateway_support import LiveDaemon, start_daemon
from tests.observability.test_usage_analytics import generated_rows
from tests.support.cortexctl_cli import Cortexctl


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[LiveDaemon]:
    d = start_daemon(tmp_path / "home", usage_flush_interval_s=0.1)
    try:
        yield d
    finally:
        d.stop()


def seed_usage(d: LiveDaemon, n: int) -> None:
    now = datetime.now(UTC)
    for i, row in enumerate(generated_rows(n, seed=3)):
        row.update(org_id=1, created_at=now - timedelta(seconds=5 + i % 50))
        d.ctx.usage_writer.submit(row)
    d.flush_usage()


def test_usage_json_is_the_api_answer_and_csv_has_its_rows(daemon: LiveDaemon) -> None:
    seed_usage(daemon, 120)
    cli = Cortexctl(home=daemon.settings.home, port=daemon.settings.port, extra_env={})
    out = cli.json("usage", "--by", "key", "--since", "1h")
    api = httpx.get(
        f"{daemon.settings.url}/admin/usage",
        params={"by": "key", "since": "1h", "bucket": "none"},
        headers={"Authorization": f"Bearer {daemon.api_key}"},
    ).json()
    assert out["data"] == api["data"] and out["group_by"] == "key" and out["fields"] == api["fields"]
    assert sum(r["requests"] for r in out["data"]) == 120

    proc = cli.run("usage", "--by", "model", "--since", "1h", "--bucket", "minute", "--csv", check=True)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert sum(int(r["requests"]) for r in rows) == 120 and {"model", "bucket", "latency_p95_ms"} <= set(
        rows[0]
    )

    table = cli.run("usage", "--since", "1h", check=True).stdout
    assert "p95ms" in table and "alpha" in table and "…" not in table  # fits 80 columns
    bad = cli.run("usage", "--since", "last tuesday")
    assert bad.returncode == 1 and "since" in bad.stderr and "Traceback" not in bad.stderr


def test_top_renders_models_replicas_and_rates_in_a_fixed_terminal(daemon: LiveDaemon) -> None:
    seed_usage(daemon, 60)
    replicas = [
        ReplicaEndpoint(model_id=1, model_name="alpha", replica_index=i, base_url=f"http://127.0.0.1:{9 + i}")
        for i in range(2)
    ]
    replicas[0].healthy, replicas[0].outstanding = True, 2
    daemon.ctx.registry.put(
        ServedModel(served_name="alpha", engine="llamacpp", state="running", replicas=replicas)
    )

    snap = top_snapshot(AdminClient(daemon.settings))
    by_replica = {r.replica: r for r in snap.rows}
    assert set(by_replica) == {"alpha/0", "alpha/1"} and by_replica["alpha/0"].in_flight == 2
    api = httpx.get(
        f"{daemon.settings.url}/admin/usage",
        params={"by": "model", "since": "60s", "all_orgs": "true"},
        headers={"Authorization": f"Bearer {daemon.api_key}"},
    ).json()
    alpha = next(r for r in api["data"] if r["model"] == "alpha")
    assert by_replica["alpha/0"].requests_per_s == pytest.approx(alpha["requests"] / 60 / 2, rel=0.05)

    console = Console(record=True, width=100, height=30, force_terminal=True, color_system=None)
    console.print(render(snap))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert "cortex top" in text and "alpha/0" in text and "alpha/1" in text and "(out)" in text
    assert "req/s" in text and "p95 ms" in text and ("GPUs" in text or "no GPUs" in text)

    cli = Cortexctl(home=daemon.settings.home, port=daemon.settings.port, extra_env={"COLUMNS": "80"})
    once = cli.run("top", "--once", check=True).stdout
    assert "alpha/0" in once
    data = json.loads(cli.run("top", "--json", check=True).stdout)
    assert {r["replica"] for r in data["rows"]} == {"alpha/0", "alpha/1"}
