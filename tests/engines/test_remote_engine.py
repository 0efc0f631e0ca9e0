"""`engine: remote`: a recipe naming an OpenAI-compatible endpoint that already runs.

Recipe and validation rules are checked for a hostile recipe (scheme, host allow-list, key
file confinement, size, mode, symlinks). The daemon tests run the real daemon, supervisor and
gateway against an upstream on loopback (tests/support/openai_upstream.py), called through
the openai SDK: the key file's key reaches the upstream as Bearer, usage is metered, and a
failing health check takes the model out of rotation (503 model_not_ready) until it recovers.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import func, select

from cortex_server.db.models import UsageRecord
from cortexctl.core.errors import RecipeError
from cortexctl.core.settings import Settings
from cortexctl.engines.remote.endpoint import MAX_KEY_BYTES, base_url, host_allowed, read_key
from cortexctl.engines.remote.runtime import RemoteRuntime
from cortexctl.recipes.loader import check_recipe_text, parse_recipe
from cortexctl.runtimes.base import choose_runtime
from cortexctl.validation import validate
from tests.support.openai_upstream import OpenAIUpstream

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from gateway_support import LiveDaemon, start_daemon  # noqa: E402

KEY = "sk-upstream-" + "x" * 24
RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
spec:
  engine: remote
  served_name: {name}
  args:
    url: {url}
{extra}  timeouts:
    load_s: 60
"""


def recipe_text(
    url: str, *, name: str = "far-chat", key_file: str | None = "upstream.key", model: str = ""
) -> str:
    extra = f"    key_file: {key_file}\n" if key_file else ""
    extra += f"    model: {model}\n" if model else ""
    return RECIPE.format(name=name, url=url, extra=extra)


def write_key(home: Path, name: str = "upstream.key", text: str = KEY, mode: int = 0o600) -> Path:
    path = home / "secrets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def problems_of(text: str) -> list[str]:
    return [str(p) for p in check_recipe_text(text, source="far.yaml").problems]


# ---- recipe rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://127.0.0.1:70/", "only http:// and https://"),
        ("http://admin:pw@127.0.0.1:8000/v1", "credentials do not belong in the URL"),
        ("http://127.0.0.1:8000/v1?redirect=x", "no query or fragment"),
        ("http:///v1", "names no host"),
    ],
)
def test_a_hostile_url_is_refused_by_the_recipe(url: str, why: str) -> None:
    problems = "\n".join(problems_of(recipe_text(url)))
    assert "spec.args.url" in problems and why in problems


def test_the_key_file_is_a_name_in_the_secrets_folder() -> None:
    for name in ("../../etc/shadow", "/root/.ssh/id_rsa", ".hidden"):
        problems = "\n".join(problems_of(recipe_text("http://127.0.0.1:9/v1", key_file=name)))
        assert "spec.args.key_file" in problems and "$CORTEX_HOME/secrets" in problems


def test_a_remote_recipe_names_no_model_file_gpu_or_flags() -> None:
    text = recipe_text("http://127.0.0.1:9/v1").replace(
        "  args:", "  gpus: all\n  model:\n    path: x.gguf\n  args:"
    )
    problems = "\n".join(problems_of(text))
    assert "a remote endpoint reads no model file" in problems
    assert "a remote endpoint uses no local GPU" in problems
    assert "extra_args" in "\n".join(
        problems_of(
            recipe_text("http://127.0.0.1:9/v1").replace("    url:", "    extra_args: [--x]\n    url:")
        )
    )


def test_hosts_must_be_allowed_by_the_operator() -> None:
    assert host_allowed("http://127.0.0.1:8000/v1", ["127.0.0.1"])
    assert host_allowed("http://127.0.0.1:8000/v1", ["127.0.0.1:8000"])
    assert not host_allowed("http://127.0.0.1:8001/v1", ["127.0.0.1:8000"])
    assert host_allowed("https://Infer.Example/v1", ["infer.example"])
    assert host_allowed("http://[::1]:80/", ["::1"]) and host_allowed("http://[::1]:9/", ["[::1]:9"])
    assert not host_allowed("http://127.0.0.1.evil.example/v1", ["127.0.0.1"])
    assert not host_allowed("http://localhost/v1", [])
    assert base_url("http://h:1/v1/") == "http://h:1" and base_url("https://h/openai") == "https://h/openai"


def test_validation_checks_the_endpoint_and_says_no_local_memory(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", remote_engine_hosts=["127.0.0.1"])
    write_key(settings.home)
    recipe = parse_recipe(recipe_text("http://127.0.0.1:9/v1"), source="far.yaml")
    report = validate(recipe, settings=settings, gpus=[])
    assert report.ok, report.to_json()
    assert {c.name: c.detail for c in report.checks}["fit"] == "remote: no local memory"
    elsewhere = parse_recipe(recipe_text("http://10.1.2.3:9/v1"), source="far.yaml")
    (refused,) = validate(elsewhere, settings=settings, gpus=[]).failures
    assert refused.name == "endpoint" and "remote_engine_hosts" in (refused.fix or "")
    assert isinstance(choose_runtime(settings, recipe), RemoteRuntime)  # nothing to launch


def test_a_key_file_must_be_private_small_one_line_and_no_symlink(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_key(home)
    assert read_key(home, "upstream.key") == KEY
    cases = {
        "open.key": (lambda: write_key(home, "open.key", mode=0o644), "readable by others"),
        "big.key": (lambda: write_key(home, "big.key", text="k" * (MAX_KEY_BYTES + 1)), "a key is at most"),
        "two.key": (lambda: write_key(home, "two.key", text="line1\nline2"), "one line"),
        "none.key": (lambda: None, "not found"),
    }
    for name, (make, why) in cases.items():
        make()
        with pytest.raises(RecipeError, match=why):
            read_key(home, name)
    secret = tmp_path / "elsewhere"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    (home / "secrets" / "link.key").symlink_to(secret)
    with pytest.raises(RecipeError, match="not a symlink"):
        read_key(home, "link.key")
    (home / "secrets" / "dir.key").mkdir()
    with pytest.raises(RecipeError, match="regular file"):
        read_key(home, "dir.key")


# ---- served by a real daemon ----------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[OpenAIUpstream]:
    up = OpenAIUpstream(model="upstream-model", key=KEY).start()
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[LiveDaemon]:
    home = tmp_path / "home"
    write_key(home)
    d = start_daemon(
        home,
        supervise=True,
        runtime="process",
        health_poll_interval_s=0.2,
        usage_flush_interval_s=0.1,
        remote_engine_hosts=["127.0.0.1"],
    )
    try:
        yield d
    finally:
        d.stop()


def wait_state(daemon: LiveDaemon, name: str, state: str, timeout_s: float = 30) -> dict[str, object]:
    admin = {"Authorization": f"Bearer {daemon.api_key}"}
    deadline = time.monotonic() + timeout_s
    while True:
        model: dict[str, object] = httpx.get(
            f"{daemon.settings.url}/admin/models/{name}", headers=admin
        ).json()
        if model["state"] == state:
            return model
        assert time.monotonic() < deadline, model
        time.sleep(0.1)


def create(daemon: LiveDaemon, text: str) -> None:
    admin = {"Authorization": f"Bearer {daemon.api_key}"}
    created = httpx.post(
        f"{daemon.settings.url}/admin/models", json={"yaml": text, "start": True}, headers=admin
    )
    assert created.status_code == 201, created.text


def usage_rows(daemon: LiveDaemon, model: str, want: int) -> int:
    deadline = time.monotonic() + 15
    while True:
        with daemon.ctx.session_factory() as session:
            n = session.scalar(
                select(func.count()).select_from(UsageRecord).where(UsageRecord.model == model)
            )
        if n == want or time.monotonic() > deadline:
            return int(n or 0)
        time.sleep(0.1)


@pytest.mark.slow
def test_served_through_the_gateway_with_the_openai_sdk(daemon: LiveDaemon, upstream: OpenAIUpstream) -> None:
    create(daemon, recipe_text(upstream.url, model="upstream-model"))
    model = wait_state(daemon, "far-chat", "running")
    assert model["runtime"] == "remote"
    client = openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key, max_retries=0)
    answer = client.chat.completions.create(
        model="far-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    chunks = list(
        client.chat.completions.create(
            model="far-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok " * 4
    assert not any(c.usage for c in chunks)  # the gateway asked for usage itself and stripped it
    # The endpoint got the key file's key as Bearer and its own model name; no process was started.
    assert upstream.models_seen == ["upstream-model", "upstream-model"]
    assert set(upstream.auth_seen) == {f"Bearer {KEY}"}
    assert usage_rows(daemon, "far-chat", 2) == 2  # metered like a local replica
    assert "far-chat" in {m.id for m in client.models.list().data}


@pytest.mark.slow
def test_a_failing_health_check_means_503_until_it_recovers(
    daemon: LiveDaemon, upstream: OpenAIUpstream
) -> None:
    create(daemon, recipe_text(upstream.url, model="upstream-model"))
    wait_state(daemon, "far-chat", "running")
    client = openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key, max_retries=0)
    upstream.healthy = False
    wait_state(daemon, "far-chat", "loading")
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model="far-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    assert refused.value.status_code == 503
    assert refused.value.body["code"] == "model_not_ready"  # type: ignore[index]
    assert upstream.completions == 0  # never forwarded to an endpoint that failed its check
    upstream.healthy = True
    wait_state(daemon, "far-chat", "running")
    answer = client.chat.completions.create(
        model="far-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 2


@pytest.mark.slow
def test_a_wrong_key_keeps_the_model_out_of_rotation(tmp_path: Path, upstream: OpenAIUpstream) -> None:
    home = tmp_path / "home"
    write_key(home, text="sk-wrong")
    d = start_daemon(
        home, supervise=True, runtime="process", health_poll_interval_s=0.2, remote_engine_hosts=["127.0.0.1"]
    )
    try:
        create(d, recipe_text(upstream.url, model="upstream-model"))
        model = wait_state(d, "far-chat", "loading")
        deadline = time.monotonic() + 10
        while "refused the key" not in str(model.get("state_reason")):
            assert time.monotonic() < deadline, model
            time.sleep(0.1)
            model = wait_state(d, "far-chat", "loading")
        assert upstream.auth_seen and set(upstream.auth_seen) == {"Bearer sk-wrong"}
    finally:
        d.stop()
    assert os.path.exists(home / "secrets" / "upstream.key")
