"""Access control through the real `/v1` routes of a real daemon process (`cortexctl up`) in front
of the real llama-server: IP allowlists judged on the socket's peer and trusted proxies' headers,
the 429 contract, a stream's concurrency slot, and no secret in any log line.

Clients take distinct loopback source addresses (127.0.0.1, .2, .3: all of 127/8 is loopback), so
"the peer" is a real socket's, not a test client's claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.served_daemon import (
    ServedDaemon,
    completion,
    create_tiny_model,
    daemon_up,
    engines_frozen,
    wait_serving,
)

pytestmark = [pytest.mark.slow, pytest.mark.llama]

PROXY = "127.0.0.2"  # the daemon's one trusted proxy
OTHER = "127.0.0.3"  # an untrusted peer


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path, tiny_gguf_file: Path
) -> Iterator[ServedDaemon]:
    root = tmp_path_factory.mktemp("served")
    with daemon_up(
        root / "home",
        llama_server_bin=llama_server_bin,
        tiny_gguf=tiny_gguf_file,
        CORTEX_TRUSTED_PROXIES=f'["{PROXY}/32"]',
    ) as daemon:
        create_tiny_model(daemon, root)
        wait_serving(daemon, daemon.key("probe"))
        yield daemon


def client_from(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60)


def call(
    served: ServedDaemon,
    key: str,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
) -> httpx.Response:
    """A completion sent from loopback address `source`, with extra header lines."""
    extra = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    with client_from(source) as client:
        return client.post(
            served.url + "/v1/completions",
            json={"model": "tiny", "prompt": "hi", "max_tokens": 2, "temperature": 0},
            headers=[("Authorization", f"Bearer {key}"), *extra],
        )


def test_key_allowlist_judges_the_socket_peer_and_ignores_untrusted_forwarded_for(
    served: ServedDaemon,
) -> None:
    key = served.key("peer-one", allowed_ips=["127.0.0.1/32"])
    assert call(served, key).status_code == 200
    denied = call(served, key, source=OTHER)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ip_not_allowed"
    # an untrusted peer claiming to forward for an allowed address changes nothing
    assert call(served, key, source=OTHER, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 403
    # a bad CIDR on create is a 400 that names it
    bad = httpx.post(
        served.url + "/admin/keys",
        json={"name": "bad", "scopes": ["inference"], "allowed_ips": ["x/1"]},
        headers={"Authorization": f"Bearer {served.admin_token}"},
    )
    assert bad.status_code == 400 and "x/1" in bad.json()["error"]["message"]


def test_trusted_proxy_forwards_the_real_client_v4_and_v6(served: ServedDaemon) -> None:
    key = served.key("behind-proxy", allowed_ips=["203.0.113.0/24", "2001:db8::/64"])
    assert call(served, key, source=PROXY).status_code == 403  # the proxy itself is not allowed
    assert call(served, key, source=PROXY, headers={"X-Forwarded-For": "203.0.113.50"}).status_code == 200
    assert call(served, key, source=PROXY, headers={"X-Forwarded-For": "2001:db8::5"}).status_code == 200
    # only the hop our proxy appended counts: the client may prepend anything
    assert (
        call(served, key, source=PROXY, headers={"X-Forwarded-For": "203.0.113.50, 198.51.100.1"}).status_code
        == 403
    )
    # a proxy that adds its own header line: the lines are joined, then read from the right
    two_lines = [("X-Forwarded-For", "203.0.113.50"), ("X-Forwarded-For", "198.51.100.1")]
    assert call(served, key, source=PROXY, headers=two_lines).status_code == 403
    v4only = served.key("v4only", allowed_ips=["203.0.113.0/24"])
    assert call(served, v4only, source=PROXY, headers={"X-Forwarded-For": "2001:db8::5"}).status_code == 403


def test_org_allowlist_binds_every_key_of_the_org_admin_keys_included(served: ServedDaemon) -> None:
    served.admin("POST", "/admin/orgs", json={"name": "walled", "allowed_ips": ["2001:db8::/32"]})
    admin_key = served.key("walled-admin", ["admin"], org="walled")
    inference_key = served.key("walled-app", org="walled")
    auth = {"Authorization": f"Bearer {admin_key}"}
    assert httpx.get(served.url + "/admin/keys", headers=auth).status_code == 403
    assert call(served, inference_key).status_code == 403
    inside = {"X-Forwarded-For": "2001:db8::7"}
    with client_from(PROXY) as client:
        assert client.get(served.url + "/admin/keys", headers={**auth, **inside}).status_code == 200
    assert call(served, inference_key, source=PROXY, headers=inside).status_code == 200


def test_429_carries_retry_after_and_openai_headers(served: ServedDaemon) -> None:
    key = served.key("limited", rpm_limit=2, tpm_limit=100_000, allowed_models=["tiny"])
    ok = completion(served.url, key, max_tokens=50)
    assert ok.status_code == 200, ok.text
    assert (
        ok.headers["x-ratelimit-limit-requests"] == "2"
        and ok.headers["x-ratelimit-remaining-requests"] == "1"
    )
    assert ok.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(ok.headers["x-ratelimit-remaining-tokens"]) <= 100_000 - 50  # max_tokens was reserved
    assert completion(served.url, key).status_code == 200
    refused = completion(served.url, key)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    seconds = int(refused.headers["retry-after"])
    assert 1 <= seconds <= 30 and f"Retry after {seconds}s" in refused.json()["error"]["message"]
    assert (
        refused.headers["x-ratelimit-remaining-requests"] == "0"
        and refused.headers["x-ratelimit-reset-requests"]
    )
    other = completion(served.url, key, model="not-allowed")
    assert other.status_code == 403 and other.json()["error"]["code"] == "model_not_allowed"


def test_token_admission_counts_what_the_engine_may_generate(served: ServedDaemon) -> None:
    """The estimate reserved at admission (seen in x-ratelimit-remaining-tokens): the request's
    max_tokens, else the model's whole per-request context; a request that can never fit the
    key's tokens per minute is a 400 that says so, not a 429 to retry."""
    key = served.key("tpm", tpm_limit=1_000_000)
    asked = completion(served.url, key, max_tokens=30)
    assert asked.status_code == 200
    assert 30 <= 1_000_000 - int(asked.headers["x-ratelimit-remaining-tokens"]) < 60
    fresh = served.key("tpm-implicit", tpm_limit=1_000_000)
    implicit = completion(served.url, fresh, max_tokens=None)
    assert implicit.status_code == 200
    # 8,192 tokens of context over 4 parallel slots: up to 2,048 tokens for one request
    assert 2048 <= 1_000_000 - int(implicit.headers["x-ratelimit-remaining-tokens"]) < 2100

    small = served.key("small-tpm", tpm_limit=300)
    never = completion(served.url, small, max_tokens=5000)
    assert never.status_code == 400 and never.json()["error"]["code"] == "exceeds_token_limit"
    assert "300 tokens per minute" in never.json()["error"]["message"]
    assert completion(served.url, small, max_tokens=None).status_code == 400  # 2,048 never fits 300
    assert completion(served.url, small, max_tokens=100).status_code == 200


def test_a_stream_holds_its_concurrency_slot_until_it_ends(served: ServedDaemon) -> None:
    key = served.key("one-stream", max_concurrent=1)
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 2000, "ignore_eos": True, "stream": True}
    engines = served.engine_pids()  # looked up first: it takes a CLI call, the stream lasts ~1 s
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        with client.stream("POST", "/v1/completions", json=body) as first:
            assert first.status_code == 200
            chunks = first.iter_bytes()
            assert next(chunks)  # streaming: the route has returned, the body is flowing
            with engines_frozen(engines):  # the stream cannot end while we look
                second = completion(served.url, key)
                assert second.status_code == 429, second.text
                assert second.headers["x-ratelimit-remaining-concurrency"] == "0"
            tail = b"".join(chunks)
        assert tail.rstrip().endswith(b"data: [DONE]")  # the held stream ended normally
    assert completion(served.url, key).status_code == 200  # its end freed the slot


def test_no_secret_ever_reaches_the_logs(
    tmp_path: Path, llama_server_bin: Path, tiny_gguf_file: Path
) -> None:
    with daemon_up(tmp_path / "home", llama_server_bin=llama_server_bin, tiny_gguf=tiny_gguf_file) as d:
        assert d.admin_password
        secrets = [d.admin_password, d.admin_token]
        create_tiny_model(d, tmp_path)
        key = d.key("k", rpm_limit=2)
        secrets.append(key)
        wait_serving(d, key)
        user_pw = "user-password-" + uuid.uuid4().hex
        secrets.append(user_pw)
        d.admin("POST", "/admin/users", json={"username": "u1", "role": "member", "password": user_pw})
        secrets.append(d.admin("POST", "/admin/users", json={"username": "u2", "role": "viewer"})["password"])
        wrong = "wrong-password-" + uuid.uuid4().hex
        secrets.append(wrong)
        with httpx.Client(base_url=d.url, timeout=60) as c:
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
            answers = [completion(d.url, key, client=c).status_code for _ in range(2)]  # the 2nd is the last
            answers.append(completion(d.url, key, client=c, stream=True).status_code)  # rate limited
            answers.append(completion(d.url, key + "x", client=c).status_code)  # a wrong key
            assert answers[-2:] == [429, 401] and 200 in answers, answers
            # the API never shows a secret again after creation
            listed = c.get("/admin/keys", headers={"Authorization": f"Bearer {d.admin_token}"}).text
            users = c.get("/admin/users", headers={"Authorization": f"Bearer {d.admin_token}"}).text
            assert not any(s in listed or s in users for s in secrets)
        d.admin("POST", "/admin/keys/k/revoke")
        # the per-launch key the gateway sends the engine is a secret too
        engine_keys = [
            json.loads(f.read_text())["api_key"] for f in (d.cli.home / "run" / "engines").glob("*.json")
        ]
        assert engine_keys, "no engine key found: the engine pid file moved?"
        secrets += engine_keys
    logs = d.logs()  # read after `down`: every buffer flushed
    assert "cortexd listening" in logs  # we really captured the daemon
    leaked = [s[:6] + "…" for s in secrets if s in logs]
    assert not leaked, f"secrets found in the logs: {leaked}"
