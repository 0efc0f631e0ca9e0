"""A real Prometheus scrapes the real daemon running a real llama-server; we read the series back.

The daemon supervises a tiny GGUF model on llama-server (process runtime); the official
`openai` SDK sends plain and streamed chat completions through the gateway; Prometheus
(Debian's `prometheus`, on a free loopback port, its own temp dir, 1 s scrape interval)
scrapes GET /metrics; the test asks Prometheus's HTTP query API for the request, token,
TTFT, model-state and engine series and compares them with what the SDK saw.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.conftest import free_port
from tests.gateway.gateway_support import LiveDaemon, start_daemon
from tests.support.engine_fixtures import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.llama]

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: tiny
spec:
  engine: llamacpp
  served_name: tiny
  model:
    path: tiny.gguf
  runtime: process
  args:
    context_length: 512
    parallel: 2
    threads: 1
    chat_template: chatml
  timeouts:
    load_s: 60
"""


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus is not installed (apt-get install -y prometheus; install.sh --dev does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Prometheus:
    def __init__(self, binary: str, root: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        config = root / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: cortex\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = root / "prometheus.log"
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = wait_until(self._ready, timeout_s=60, interval_s=0.3)
        assert ready, f"prometheus did not become ready: {self.log.read_text()[-2000:]}"

    def _ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def daemon(tmp_path: Path, llama_server_bin: Path, tiny_gguf_file: Path) -> Iterator[LiveDaemon]:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    shutil.copy(tiny_gguf_file, home / "models" / "tiny.gguf")
    base = 30000 + os.getpid() % 400 * 2
    d = start_daemon(
        home,
        supervise=True,
        runtime="process",
        llama_server_bin=llama_server_bin,
        health_poll_interval_s=0.5,
        engine_metrics_interval_s=1.0,
        engine_port_range=(base, base + 50),
        usage_flush_interval_s=0.2,
    )
    try:
        yield d
    finally:
        admin = {"Authorization": f"Bearer {d.api_key}"}
        httpx.post(f"{d.settings.url}/admin/models/tiny/stop", headers=admin, timeout=30)
        wait_until(lambda: _model(d).get("state") == "stopped", timeout_s=30, interval_s=0.5)
        d.stop()


def _model(d: LiveDaemon) -> dict[str, Any]:
    resp = httpx.get(
        f"{d.settings.url}/admin/models/tiny", headers={"Authorization": f"Bearer {d.api_key}"}, timeout=10
    )
    return resp.json() if resp.status_code == 200 else {}


def test_prometheus_reads_requests_tokens_ttft_and_model_state(
    daemon: LiveDaemon, prometheus_bin: str, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {daemon.api_key}"}
    url = daemon.settings.url
    created = httpx.post(
        f"{url}/admin/models", json={"yaml": RECIPE, "start": True}, headers=admin, timeout=30
    )
    assert created.status_code == 201, created.text
    assert wait_until(lambda: _model(daemon).get("state") == "running", timeout_s=90, interval_s=0.5), _model(
        daemon
    )
    key = httpx.post(
        f"{url}/admin/keys", json={"name": "app", "scopes": ["inference"]}, headers=admin, timeout=10
    ).json()["key"]

    prom = Prometheus(prometheus_bin, tmp_path / "prom", target=f"127.0.0.1:{daemon.settings.port}")
    try:
        client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        completion_tokens = prompt_tokens = 0
        for i in range(3):
            out = client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": f"hello {i}"}], max_tokens=8
            )
            assert out.usage is not None
            completion_tokens += out.usage.completion_tokens
            prompt_tokens += out.usage.prompt_tokens
        for i in range(2):
            stream = client.chat.completions.create(
                model="tiny",
                messages=[{"role": "user", "content": f"stream {i}"}],
                max_tokens=8,
                stream=True,
                stream_options={"include_usage": True},
            )
            usage = [c.usage for c in stream if c.usage is not None]
            completion_tokens += usage[-1].completion_tokens
            prompt_tokens += usage[-1].prompt_tokens
        bad = OpenAI(base_url=f"{url}/v1", api_key="sk-not-a-key", max_retries=0)
        with pytest.raises(Exception, match="401"):
            bad.models.list()

        sel = 'model="tiny",route="chat.completions"'

        def scraped() -> bool:
            return prom.scalar(f'sum(cortex_requests_total{{{sel},status_class="2xx"}})') == 5.0

        assert wait_until(scraped, timeout_s=30, interval_s=0.5), prom.query("cortex_requests_total")
        assert prom.scalar('cortex_tokens_total{model="tiny",kind="completion"}') == completion_tokens
        assert prom.scalar('cortex_tokens_total{model="tiny",kind="prompt"}') == prompt_tokens
        assert prom.scalar(f"cortex_time_to_first_token_seconds_count{{{sel}}}") == 2.0
        assert prom.scalar(f"cortex_request_duration_seconds_count{{{sel}}}") == 5.0
        buckets = f"cortex_request_duration_seconds_bucket{{{sel}}}"
        p95 = prom.scalar(f"histogram_quantile(0.95, sum by (le) ({buckets}))")  # over all 5, no rate()
        assert p95 is not None and 0 < p95 <= 60
        assert prom.scalar('cortex_model_state{model="tiny",state="running"}') == 1.0
        assert prom.scalar('cortex_model_state{model="tiny",state="failed"}') == 0.0
        assert prom.scalar('cortex_model_healthy_replicas{model="tiny"}') == 1.0
        assert prom.scalar('cortex_auth_rejections_total{status="401"}') == 1.0
        assert prom.scalar('cortex_replica_load_duration_seconds{model="tiny",replica="tiny/0"}') > 0
        # llama-server's own counters, scraped by the health poller and re-labelled
        engine = 'llamacpp:tokens_predicted_total{model="tiny",replica="tiny/0"}'
        assert wait_until(
            lambda: (prom.scalar(engine) or 0) >= completion_tokens, timeout_s=20, interval_s=0.5
        ), json.dumps(prom.query('{__name__=~"llamacpp:.*"}'))[:2000]
        assert (prom.scalar('cortex_engine_memory_rss_bytes{model="tiny",replica="tiny/0"}') or 0) > 1e6
        up = prom.query('up{job="cortex"}')
        assert up and up[0]["value"][1] == "1"
    finally:
        prom.stop()
