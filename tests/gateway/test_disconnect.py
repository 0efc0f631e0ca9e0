"""A client that leaves before a non-streamed answer is ready cancels the engine call at once.

The engine is VllmTestDouble (vLLM needs a GPU), made slow: 0.2 s per generated token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_support import LiveDaemon, free_port
from sqlalchemy import select

from cortex_server.db.models import UsageRecord
from cortex_server.services.registry import ReplicaEndpoint, ServedModel

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "vllm_test_double.py"


@pytest.fixture
def slow_engine(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    (tmp_path / "model").mkdir()
    env = {**os.environ, "VLLM_TEST_DOUBLE_LOAD_S": "0", "VLLM_TEST_DOUBLE_TOKEN_DELAY_S": "0.2"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(DOUBLE),
            str(tmp_path / "model"),
            "--port",
            str(port),
            "--served-model-name",
            "slow",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.kill()
    proc.wait(10)


def test_client_disconnect_cancels_a_non_streamed_request(daemon: LiveDaemon, slow_engine: str) -> None:
    daemon.ctx.registry.put(
        ServedModel(
            served_name="slow",
            engine="vllm",
            state="running",
            replicas=[
                ReplicaEndpoint(
                    model_id=1, model_name="slow", replica_index=0, base_url=slow_engine, healthy=True
                )
            ],
        )
    )
    body = {"model": "slow", "prompt": "hello", "max_tokens": 50}  # 50 tokens × 0.2 s = 10 s of work
    headers = {"authorization": f"Bearer {daemon.api_key}"}
    left_at = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{daemon.base_url}/completions", json=body, headers=headers, timeout=httpx.Timeout(10, read=0.5)
        )

    def row() -> UsageRecord | None:
        with daemon.ctx.session_factory() as s:
            return s.scalar(select(UsageRecord).where(UsageRecord.model == "slow"))

    deadline = time.monotonic() + 5
    while (record := row()) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert record is not None, "the cancelled request was not metered"
    assert record.cancelled and record.status_code == 499 and not record.streamed
    assert time.monotonic() - left_at < 5  # metered when the client left, not when the 10 s finished
    assert daemon.ctx.registry.require("slow").replicas[0].outstanding == 0
