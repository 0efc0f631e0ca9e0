"""The model lifecycle end to end: a real daemon, the real llama-server, the process runtime."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.cortexctl_cli import Cortexctl
from tests.support.engine_fixtures import wait_until

pytestmark = pytest.mark.slow

TINY_RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
  description: tiny random llama for lifecycle tests
spec:
  engine: llamacpp
  served_name: {name}
  model:
    path: {model}
  runtime: process
  args:
    context_length: 256
    parallel: 1
    threads: 1
  timeouts:
    load_s: 60
"""


@pytest.fixture
def daemon(cortexctl: Cortexctl, llama_server_bin: Path, tiny_gguf_file: Path) -> Cortexctl:
    cortexctl.extra_env.update(
        CORTEX_LLAMA_SERVER_BIN=str(llama_server_bin),
        CORTEX_RUNTIME="process",
        CORTEX_HEALTH_POLL_INTERVAL_S="0.5",
        CORTEX_ENGINE_PORT_RANGE=json.dumps([29000 + os.getpid() % 500 * 2, 29999]),
    )
    (cortexctl.home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_gguf_file, cortexctl.home / "models" / "tiny.gguf")
    cortexctl.run("up", check=True)
    return cortexctl


def write_recipe(tmp_path: Path, name: str, model: str = "tiny.gguf", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY_RECIPE.format(name=name, model=model) + extra)
    return path


def model_state(cli: Cortexctl, name: str) -> dict[str, Any]:
    """`cortexctl model show NAME --json`, read over HTTP: polled in tight loops, where starting
    a CLI process (seconds on a loaded host) would blur the timings under test."""
    token = (cli.home / "admin.token").read_text().strip()
    resp = httpx.get(
        f"http://127.0.0.1:{cli.port}/admin/models/{name}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    state: dict[str, Any] = resp.json()
    return state


def inference_key(cli: Cortexctl) -> str:
    key: str = cli.json("keys", "create", "--name", f"k{time.monotonic_ns()}", "--scope", "inference")["key"]
    return key


def gateway_completion(cli: Cortexctl, key: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{cli.port}/v1/completions",
        json={"model": "tiny", "prompt": "hi", "max_tokens": 4},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def replaced(cli: Cortexctl, name: str, index: int, old_pid: int) -> bool:
    """The supervisor saw replica `index` die: it is no longer running under the killed pid."""
    replica = model_state(cli, name)["replicas"][index]
    return replica["state"] != "running" or replica["pid"] != old_pid or replica["restart_count"] > 0


def test_create_wait_kill_restart_readopt(daemon: Cortexctl, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, "tiny")
    created = daemon.json("model", "create", "-f", str(recipe), "--wait", "--timeout", "90")
    assert created["state"] == "running"

    listed = {m["name"]: m for m in daemon.json("model", "list")}
    replica = listed["tiny"]["replicas"][0]
    assert listed["tiny"]["runtime"] == "process" and replica["pid"] and replica["port"]
    engine_url = f"http://127.0.0.1:{replica['port']}"
    body = {"prompt": "hi", "max_tokens": 4}
    # The engine answers only the gateway: without its per-launch key a direct call is refused.
    assert httpx.post(engine_url + "/v1/completions", json=body, timeout=30).status_code == 401
    key = inference_key(daemon)
    assert gateway_completion(daemon, key).status_code == 200

    # Kill the engine: the daemon notices and restarts it with backoff. The non-running window can
    # be shorter than one CLI poll, so the event waited for is the restart itself (a new pid).
    os.kill(replica["pid"], signal.SIGKILL)
    assert wait_until(lambda: replaced(daemon, "tiny", 0, replica["pid"]), timeout_s=60, interval_s=0.2)
    assert wait_until(lambda: model_state(daemon, "tiny")["state"] == "running", timeout_s=60, interval_s=0.5)
    restarted = model_state(daemon, "tiny")["replicas"][0]
    assert restarted["restart_count"] == 1 and restarted["pid"] != replica["pid"]

    # Restarting the daemon leaves the engine running and re-adopts it.
    daemon.run("down", check=True)
    assert psutil.pid_exists(restarted["pid"])
    daemon.run("up", check=True)
    assert wait_until(lambda: model_state(daemon, "tiny")["state"] == "running", timeout_s=30, interval_s=0.5)
    adopted = model_state(daemon, "tiny")["replicas"][0]
    assert adopted["pid"] == restarted["pid"] and adopted["port"] == restarted["port"]
    # … and still holds its key (pid file, owner-only): the gateway keeps serving through it
    (pid_file,) = (daemon.home / "run" / "engines").glob("llamacpp-model-*.json")
    assert pid_file.stat().st_mode & 0o777 == 0o600
    engine_key = json.loads(pid_file.read_text())["api_key"]
    assert engine_key and engine_key not in " ".join(psutil.Process(adopted["pid"]).cmdline())
    assert gateway_completion(daemon, key).status_code == 200

    # Stop really stops the engine.
    daemon.run("model", "stop", "tiny", check=True)
    assert wait_until(lambda: not psutil.pid_exists(restarted["pid"]), timeout_s=30)
    assert wait_until(lambda: model_state(daemon, "tiny")["state"] == "stopped", timeout_s=10)
    daemon.run("model", "delete", "tiny", check=True)


@pytest.mark.parametrize(
    ("case", "model", "extra", "rule"),
    [
        ("missing-file", "nope.gguf", "", "model-file-missing"),
        ("not-gguf", "garbage.gguf", "", "model-file-corrupt"),
    ],
)
def test_provoked_failures_end_failed_with_diagnosis(
    daemon: Cortexctl, tmp_path: Path, case: str, model: str, extra: str, rule: str
) -> None:
    (daemon.home / "models" / "garbage.gguf").write_bytes(b"this is not a gguf file\n" * 100)
    recipe = write_recipe(tmp_path, f"bad-{case}", model=model, extra=extra)
    daemon.run("model", "create", "-f", str(recipe), check=True)
    # --force skips the preflight check, so the engine itself fails and its log is diagnosed
    proc = daemon.run("model", "start", f"bad-{case}", "--force", "--wait", "--timeout", "60")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    shown = model_state(daemon, f"bad-{case}")
    assert shown["state"] == "failed"
    assert shown["diagnosis"]["rule"] == rule, shown["diagnosis"]
    assert shown["diagnosis"]["fix"]
    diagnose = daemon.run("model", "logs", f"bad-{case}", "--diagnose")
    assert rule in diagnose.stdout


def test_preflight_refuses_a_start_that_cannot_work_unless_forced(daemon: Cortexctl, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, "nofile", model="missing.gguf")
    proc = daemon.run("model", "create", "-f", str(recipe), "--start", "--wait", "--timeout", "30")
    assert proc.returncode == 1 and "preflight" in proc.stderr
    shown = model_state(daemon, "nofile")
    assert shown["state"] == "failed" and shown["diagnosis"]["rule"] == "preflight-failed"
    assert "missing.gguf" in shown["diagnosis"]["summary"]

    failing = daemon.run("model", "validate", "nofile", "--json")
    report = json.loads(failing.stdout)
    assert failing.returncode == 1
    assert report["ok"] is False and any(c["status"] == "FAIL" for c in report["checks"])

    (daemon.home / "models" / "missing.gguf").write_bytes((daemon.home / "models" / "tiny.gguf").read_bytes())
    report = daemon.json("model", "validate", "nofile")
    assert report["ok"] is True and report["command"][1:3] == [
        "-m",
        str(daemon.home / "models" / "missing.gguf"),
    ]
    started = daemon.json("model", "start", "nofile", "--wait", "--timeout", "60")
    assert started["state"] == "running"
    daemon.run("model", "stop", "nofile", check=True)


def test_two_replicas_kill_one_under_traffic_through_the_gateway(daemon: Cortexctl, tmp_path: Path) -> None:
    """Supervisor + registry + gateway together: a killed replica is routed around without a
    failed request, restarted with backoff, and gets traffic again."""
    import threading

    recipe = write_recipe(tmp_path, "pair")
    recipe.write_text(
        recipe.read_text().replace("  runtime: process\n", "  runtime: process\n  replicas: 2\n")
    )
    created = daemon.json("model", "create", "-f", str(recipe), "--wait", "--timeout", "90")
    assert created["state"] == "running"
    assert wait_until(
        lambda: (
            all(r["state"] == "running" for r in model_state(daemon, "pair")["replicas"])
            and len(model_state(daemon, "pair")["replicas"]) == 2
        ),
        timeout_s=60,
        interval_s=0.5,
    )
    key = daemon.json("keys", "create", "--name", "pair-client", "--scope", "inference")["key"]
    url = f"http://127.0.0.1:{daemon.port}/v1/completions"
    failures: list[str] = []
    served: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            while not stop.is_set():
                r = client.post(url, json={"model": "pair", "prompt": "hi", "max_tokens": 2})
                if r.status_code == 200:
                    served.append(r.status_code)
                else:
                    failures.append(f"{r.status_code} {r.text[:200]}")

    workers = [threading.Thread(target=traffic) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        victim = model_state(daemon, "pair")["replicas"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        assert wait_until(lambda: replaced(daemon, "pair", 0, victim["pid"]), timeout_s=60, interval_s=0.2)
        assert wait_until(
            lambda: all(r["state"] == "running" for r in model_state(daemon, "pair")["replicas"]),
            timeout_s=60,
            interval_s=0.5,
        )
        back_at = datetime.now(UTC)
        time.sleep(2.0)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert failures == [] and len(served) > 20
    replicas = daemon.json("model", "show", "pair")["replicas"]
    assert replicas[0]["restart_count"] == 1 and replicas[0]["pid"] != victim["pid"]
    with sqlite3.connect(daemon.home / "cortex.db") as db:  # traffic returned to the restarted replica
        rows = db.execute("SELECT replica, created_at FROM usage_records WHERE model = 'pair'").fetchall()
    after = [r for r, at in rows if datetime.fromisoformat(at).replace(tzinfo=UTC) > back_at]
    assert {"pair/0", "pair/1"} <= set(after), set(after)
    daemon.run("model", "stop", "pair", check=True)
