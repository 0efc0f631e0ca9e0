"""A hostile tenant against a real daemon process and a real llama-server (the recipes/engines half).

One daemon (`cortexctl up`, process runtime, the real llama-server, a tiny GGUF in the
model store) is attacked the ways issue #19 reproduced:
  - a tenant org's admin (and a models:write key) writes recipes → 403, and cannot read
    what names host paths (recipe YAML, engine logs, the preflight, /admin/system);
  - an operator recipe with a dangerous engine flag, or naming a file outside the model
    store (`../../etc/shadow`, `/etc/hostname`, a symlink in the store pointing out), is
    refused by `cortexctl recipe validate` and by the daemon's apply, with the same words
    whether the target exists or not;
  - the engine's port answers 401 to anyone without the engine key, while the gateway
    serves the same model;
  - a YAML alias bomb is refused in under a second and grows the daemon by < 50 MiB.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from cortexctl.core.settings import Settings
from cortexctl.recipes.flags import accepted_flags
from cortexctl.recipes.flags.allowlist import takes_path
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.cortexctl_cli import Cortexctl, cortexctl  # noqa: F401 - fixture
from tests.support.engine_fixtures import llama_server_bin, tiny_gguf_file, wait_until  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.llama]

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
spec:
  engine: llamacpp
  served_name: {name}
  model:
    path: {model}
  runtime: process
  args:
    context_length: 256
    threads: 1
{args}  timeouts:
    load_s: 60
"""

# The flags the issue used, then every other llama-server flag that takes a file path.
NAMED_FLAGS = [
    ["--tools", "exec_shell_command"],
    ["--log-file", "/tmp/cortex-hostile.log"],
    ["--mcp-servers-json", '{"mcpServers": {}}'],
    ["--path", "/"],
    ["--slot-save-path", "/tmp"],
    ["--log-prompts-dir", "/tmp"],
    ["--media-path", "/"],
    ["--api-key", "mine"],
    ["--api-key-file", "/etc/hostname"],
    ["--ssl-key-file", "/etc/ssl/private/key.pem"],
    ["--ssl-cert-file", "/etc/ssl/certs/cert.pem"],
    ["--host", "0.0.0.0"],
    ["--port", "8081"],
]


def dangerous_flags() -> list[list[str]]:
    named = {args[0] for args in NAMED_FLAGS}
    path_flags = sorted(
        {
            info.canonical
            for info in accepted_flags("llamacpp").values()
            if takes_path(info.value_hint, info.help, info.nargs)
        }
        - named
    )
    return NAMED_FLAGS + [[flag, "/etc/shadow"] for flag in path_flags]


DEEP = "../" * 16  # from the store to / whatever the test home's depth
# (exists on the host, does not): the refusal must read the same for both
PATH_PAIRS = [
    ("../../etc/shadow", "../../etc/cortex-absent-file"),
    (DEEP + "etc/shadow", DEEP + "etc/cortex-absent-file"),
    ("/etc/hostname", "/etc/cortex-absent-file"),
    ("link-to-hostname.gguf", "link-to-absent.gguf"),
]


def args_block(extra: list[str] | None = None, template: str | None = None) -> str:
    out = ""
    if template is not None:
        out += f"    chat_template_file: {json.dumps(template)}\n"
    if extra is not None:
        out += f"    extra_args: {json.dumps(extra)}\n"
    return out


def recipe(
    name: str, *, model: str = "tiny.gguf", extra: list[str] | None = None, template: str | None = None
) -> str:
    return RECIPE.format(name=name, model=json.dumps(model), args=args_block(extra, template))


class Api:
    def __init__(self, cli: Cortexctl, token: str) -> None:
        self.base = f"http://127.0.0.1:{cli.port}"
        self.token = token

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def key(self, name: str, scopes: list[str], org: str | None = None) -> str:
        resp = self.call("POST", "/admin/keys", json={"name": name, "scopes": scopes, "org": org})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["key"])


@pytest.fixture
def daemon(cortexctl: Cortexctl, llama_server_bin: Path, tiny_gguf_file: Path) -> Iterator[Cortexctl]:  # noqa: F811
    cortexctl.extra_env.update(
        CORTEX_LLAMA_SERVER_BIN=str(llama_server_bin),
        CORTEX_RUNTIME="process",
        CORTEX_HEALTH_POLL_INTERVAL_S="0.5",
        CORTEX_ENGINE_PORT_RANGE=json.dumps([31000 + os.getpid() % 400 * 2, 31999]),
    )
    store = cortexctl.home / "models"
    store.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_gguf_file, store / "tiny.gguf")
    (store / "chat.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    os.symlink("/etc/hostname", store / "link-to-hostname.gguf")  # in the store, pointing out
    os.symlink("/etc/cortex-absent-file", store / "link-to-absent.gguf")
    cortexctl.run("up", check=True)
    yield cortexctl
    cortexctl.run("down")
    runtime = ProcessRuntime(settings=Settings(home=cortexctl.home))  # engines outlive `down`: end ours
    for leftover in runtime.adopt():
        runtime.stop(leftover, timeout_s=5)


def same_words(messages: dict[str, str]) -> set[str]:
    """The messages with the offending value taken out: one element when they agree."""
    return {m.replace(json.dumps(v)[1:-1], "<V>").replace(repr(v), "<V>") for v, m in messages.items()}


def test_hostile_tenant(daemon: Cortexctl, tmp_path: Path) -> None:
    api = Api(daemon, (daemon.home / "admin.token").read_text().strip())
    assert Path("/etc/hostname").is_file() and not Path("/etc/cortex-absent-file").exists()

    # ---- tenants cannot change (or read) what runs on the host --------------------------------
    assert api.call("POST", "/admin/orgs", json={"name": "acme"}).status_code == 201
    tenant_admin = api.key("acme-admin", ["admin"], org="acme")
    writer = api.key("models-writer", ["models:write", "models:read"])  # default org, not an admin
    good = recipe("tiny")
    for token in (tenant_admin, writer):
        created = api.call("POST", "/admin/recipes", token=token, json={"yaml": good})
        assert created.status_code == 403, created.text
        assert "operators" in created.json()["error"]["message"]
    assert api.call("POST", "/admin/recipes", json={"yaml": good}).status_code == 201  # the operator may
    for method, path in [
        ("PUT", "/admin/recipes/tiny"),
        ("DELETE", "/admin/recipes/tiny"),
        ("GET", "/admin/recipes"),
        ("GET", "/admin/recipes/tiny"),
        ("GET", "/admin/recipes/tiny/yaml"),
        ("GET", "/admin/system"),
    ]:
        body = {"json": {"yaml": good}} if method == "PUT" else {}
        for token in (tenant_admin, writer):
            assert api.call(method, path, token=token, **body).status_code == 403, (method, path)

    # ---- dangerous flags: refused by `recipe validate` and by the daemon ----------------------
    flags = dangerous_flags()
    assert len(flags) > len(NAMED_FLAGS)  # the path-taking ones came from the flag data
    files = []
    for i, extra in enumerate(flags):
        path = tmp_path / f"flag-{i}.yaml"
        path.write_text(recipe(f"flag-{i}", extra=extra))
        files.append(path)
    proc = daemon.run("recipe", "validate", "--json", *map(str, files))
    assert proc.returncode == 1
    reports = {r["file"]: r for r in json.loads(proc.stdout)}
    for path, extra in zip(files, flags, strict=True):
        errors = reports[str(path)]["errors"]
        assert [e["field"] for e in errors] == ["spec.args.extra_args[0]"], (extra, errors)
        validate_said = errors[0]["problem"]
        assert validate_said.startswith(extra[0]), validate_said  # refused, naming the flag and why
        applied = api.call("POST", "/admin/recipes", json={"yaml": path.read_text()})
        assert applied.status_code == 400, (extra, applied.text)
        assert validate_said in applied.json()["error"]["message"]
    replaced = api.call("PUT", "/admin/recipes/tiny", json={"yaml": recipe("tiny", extra=NAMED_FLAGS[0])})
    assert replaced.status_code == 400 and "--tools is not allowed" in replaced.json()["error"]["message"]

    # ---- files outside the model store: refused, and no existence oracle ----------------------
    cases = []  # (field, pair index, value, recipe file)
    for field in ("model", "template"):
        for n, pair in enumerate(PATH_PAIRS):
            for value in pair:
                text = recipe("paths", model=value) if field == "model" else recipe("paths", template=value)
                path = tmp_path / f"paths-{len(cases)}.yaml"
                path.write_text(text)
                cases.append((field, n, value, path))
    proc = daemon.run("recipe", "validate", "--json", *(str(c[3]) for c in cases))
    assert proc.returncode == 1
    reports = {r["file"]: r for r in json.loads(proc.stdout)}
    said: dict[tuple[str, int, str], dict[str, str]] = {}
    for field, n, value, path in cases:
        (error,) = reports[str(path)]["errors"]
        assert "is outside the model store" in error["problem"], error
        said.setdefault((field, n, "validate"), {})[value] = error["problem"]
        applied = api.call("POST", "/admin/recipes", json={"yaml": path.read_text()})
        assert applied.status_code == 400, applied.text
        said.setdefault((field, n, "apply"), {})[value] = applied.json()["error"]["message"]
    for where, messages in said.items():
        assert len(messages) == 2 and len(same_words(messages)) == 1, (where, messages)

    # ---- engines answer only the gateway --------------------------------------------------------
    deployed = api.call("POST", "/admin/models", json={"recipe": "tiny", "start": True})
    assert deployed.status_code == 201, deployed.text
    assert wait_until(
        lambda: api.call("GET", "/admin/models/tiny").json()["state"] == "running",
        timeout_s=90,
        interval_s=0.5,
    ), api.call("GET", "/admin/models/tiny/logs").text
    (replica,) = api.call("GET", "/admin/models/tiny").json()["replicas"]
    engine = f"http://127.0.0.1:{replica['port']}"
    client_key = api.key("client", ["inference"])
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    served = api.call("POST", "/v1/chat/completions", token=client_key, json=chat)
    assert served.status_code == 200 and served.json()["choices"], served.text
    for method, path, body in [
        ("POST", "/v1/chat/completions", chat),
        ("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 4}),
        ("POST", "/completion", {"prompt": "hi", "n_predict": 4}),
        ("GET", "/metrics", None),
        ("GET", "/slots", None),
        ("GET", "/props", None),
    ]:
        for headers in ({}, {"Authorization": f"Bearer {client_key}"}):  # a gateway key is not the engine's
            direct = httpx.request(method, engine + path, json=body, headers=headers, timeout=30)
            assert direct.status_code == 401, (method, path, direct.status_code, direct.text)
    pid = replica["pid"]
    assert not any("cortex-engine-" in arg for arg in psutil.Process(pid).cmdline())  # not in argv
    again = api.call("POST", "/v1/chat/completions", token=client_key, json=chat)
    assert again.status_code == 200  # the gateway still serves

    # tenants see the model they may use, without host details
    tenant_client = api.key("acme-client", ["inference", "models:read"], org="acme")
    listed = api.call("GET", "/v1/models", token=tenant_client).json()
    assert "tiny" in [m["id"] for m in listed["data"]]
    (tenant_view,) = api.call("GET", "/admin/models", token=tenant_admin).json()
    assert tenant_view["state"] == "running" and tenant_view["state_reason"] is None
    assert [(r["pid"], r["port"], r["container_id"]) for r in tenant_view["replicas"]] == [(None, None, None)]
    for method, path in [("GET", "/admin/models/tiny/logs"), ("POST", "/admin/models/tiny/validate")]:
        assert api.call(method, path, token=tenant_admin).status_code == 403, path

    # ---- the alias bomb: refused fast, in bounded memory -----------------------------------------
    daemon_pid = api.call("GET", "/admin/system").json()["pid"]
    proc_handle = psutil.Process(daemon_pid)
    rss_before = proc_handle.memory_info().rss
    started = time.perf_counter()
    bombed = api.call("POST", "/admin/recipes", json={"yaml": alias_bomb()})
    elapsed = time.perf_counter() - started
    rss_growth = proc_handle.memory_info().rss - rss_before
    assert 400 <= bombed.status_code < 500, bombed.text
    assert "aliases" in bombed.json()["error"]["message"]
    assert elapsed < 1.0, elapsed
    assert rss_growth < 50 * 2**20, rss_growth
    assert (
        api.call("POST", "/admin/recipes", token=tenant_admin, json={"yaml": alias_bomb()}).status_code == 403
    )

    api.call("POST", "/admin/models/tiny/stop")
    assert wait_until(lambda: not psutil.pid_exists(pid), timeout_s=30)


def alias_bomb() -> str:
    """'Billion laughs': 9 levels of 9 aliases each (9**9 strings once expanded), about 900 bytes."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"
