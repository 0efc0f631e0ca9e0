"""No false 404 after a restart: until the daemon's registry is loaded, a request for a model
gets a retryable 503 (OpenAI error shape, Retry-After) and /ready is false; never a 404 for a
model that exists."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from cortex_server.core.errors import response_for
from cortex_server.services.registry import ModelRegistry
from cortexctl.core.errors import CortexError
from tests.support.engine_fixtures import llama_server_bin, tiny_gguf_file  # noqa: F401 - fixtures
from tests.support.served_daemon import create_tiny_model, daemon_up, wait_serving


def test_an_unloaded_registry_answers_a_retryable_503_not_a_404() -> None:
    registry = ModelRegistry(loaded=False)
    with pytest.raises(CortexError) as exc:
        registry.require("tiny")
    resp = response_for(exc.value)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert b'"code":"models_loading"' in resp.body and b'"type":"service_unavailable"' in resp.body
    registry.loaded = True
    with pytest.raises(CortexError) as exc:
        registry.require("tiny")
    assert response_for(exc.value).status_code == 404


@pytest.mark.slow
@pytest.mark.llama
def test_requests_fired_while_the_daemon_restarts_never_get_a_404(
    tmp_path: Path,
    llama_server_bin: Path,  # noqa: F811 - fixture
    tiny_gguf_file: Path,  # noqa: F811 - fixture
) -> None:
    with daemon_up(tmp_path / "home", llama_server_bin=llama_server_bin, tiny_gguf=tiny_gguf_file) as d:
        create_tiny_model(d, tmp_path)
        key = d.key("restart")
        wait_serving(d, key)
        d.cli.run("down", check=True)

        seen: list[tuple[int, str, str | None]] = []
        readies: list[int] = []
        done = threading.Event()

        def fire() -> None:
            body = {"model": "tiny", "prompt": "Hi", "max_tokens": 2}
            with httpx.Client(timeout=30, trust_env=False) as client:
                while not done.is_set():
                    try:
                        ready = client.get(d.url + "/ready")
                        resp = client.post(
                            d.url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"}
                        )
                    except httpx.TransportError:
                        continue  # not listening yet
                    readies.append(ready.status_code)
                    seen.append((resp.status_code, resp.text[:200], resp.headers.get("Retry-After")))
                    if resp.status_code == 200:
                        return

        firing = threading.Thread(target=fire)
        firing.start()
        try:
            d.cli.run("up", check=True)
            firing.join(timeout=120)
        finally:
            done.set()
            firing.join()
        statuses = [s for s, _, _ in seen]
        assert 404 not in statuses, seen
        assert statuses and statuses[-1] == 200, seen
        for status, text, retry_after in seen:
            if "models_loading" in text:  # the answer before the registry is loaded
                assert status == 503 and retry_after == "1", (status, text)
