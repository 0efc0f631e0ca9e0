"""Daemons as users run them: `cortexctl up` in a private home, serving a tiny llama model on the
real llama-server, driven only through public surfaces (the CLI, HTTP, the engine's OS process).

Access-control tests use this so that what they prove goes through the real `/v1` routes of a
real daemon process: admission, the gateway, the engine, usage, in one path.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.conftest import free_port
from tests.support.cortexctl_cli import Cortexctl

TINY_RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
  description: tiny random llama for access-control tests
spec:
  engine: llamacpp
  served_name: {name}
  model:
    path: tiny.gguf
  runtime: {runtime}
  args:
    context_length: 8192
    parallel: 4
    threads: 1
{args}{spec}  timeouts:
    load_s: 120
"""

# Ports that cannot collide between the daemons of one test session (each gets its own slice).
_port_slices = iter(range(0, 10_000))


def engine_port_range() -> str:
    """A private slice of engine ports for one daemon (engines of two daemons never race for one)."""
    base = 30000 + ((os.getpid() % 100) * 10 + next(_port_slices) % 10) * 20
    return f"[{base}, {base + 19}]"


@dataclass
class ServedDaemon:
    """One daemon process started by `cortexctl up`, and what its first start printed."""

    cli: Cortexctl
    admin_password: str | None
    admin_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cli.port}"

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = httpx.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        assert resp.status_code < 300, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def key(self, name: str, scopes: Sequence[str] = ("inference",), **extra: Any) -> str:
        key: str = self.admin("POST", "/admin/keys", json={"name": name, "scopes": list(scopes), **extra})[
            "key"
        ]
        return key

    def pid(self) -> int:
        pid = self.cli.json("status")["pid"]
        assert pid, "the daemon is not running"
        return int(pid)

    def engine_pids(self) -> list[int]:
        """The llama-server processes this daemon's supervisor started (its children)."""
        children = psutil.Process(self.pid()).children(recursive=True)
        return [p.pid for p in children if "llama-server" in p.name()]

    def logs(self) -> str:
        """Everything the daemon wrote: its stdout/stderr log and its log files."""
        return "".join(
            p.read_text(errors="replace") for p in sorted((self.cli.home / "logs").rglob("*.log*"))
        )


def up(cli: Cortexctl, *, llama_server_bin: Path, tiny_gguf: Path, **env: str) -> ServedDaemon:
    """`cortexctl up` with the process runtime, the real llama-server and the tiny model in its store."""
    cli.extra_env.update(
        {
            "CORTEX_LLAMA_SERVER_BIN": str(llama_server_bin),
            "CORTEX_RUNTIME": "process",
            "CORTEX_HEALTH_POLL_INTERVAL_S": "0.5",
            "CORTEX_ENGINE_PORT_RANGE": engine_port_range(),
            "CORTEX_LOG_LEVEL": "debug",  # the secrets test wants every line the daemon can write
            **env,
        }
    )
    models = cli.home / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "tiny.gguf").write_bytes(tiny_gguf.read_bytes())
    started = cli.json("up")
    return ServedDaemon(
        cli=cli,
        admin_password=started.get("admin_password"),
        admin_token=(cli.home / "admin.token").read_text().strip(),
    )


def create_tiny_model(
    daemon: ServedDaemon,
    recipe_dir: Path,
    name: str = "tiny",
    *,
    args: str = "",
    spec: str = "",
    runtime: str = "process",
) -> None:
    """`cortexctl model create -f … --start --wait`: the supervisor starts llama-server from the recipe.

    `args` and `spec` are YAML lines added under spec.args and spec (indented 4 and 2 spaces).
    """
    recipe = recipe_dir / f"{name}.yaml"
    recipe.write_text(TINY_RECIPE.format(name=name, args=args, spec=spec, runtime=runtime))
    created = daemon.cli.json("model", "create", "-f", str(recipe), "--start", "--wait", "--timeout", "180")
    assert created["state"] == "running", created


def wait_serving(daemon: ServedDaemon, key: str, model: str = "tiny", *, timeout_s: float = 120) -> None:
    """Until this daemon's gateway answers a completion for `model` (its registry and engine are up)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        resp = completion(daemon.url, key, model=model)
        if resp.status_code == 200:
            return
        last = f"{resp.status_code} {resp.text[:300]}"
        time.sleep(0.25)
    raise AssertionError(f"{daemon.url} does not serve {model!r}: {last}")


def completion(
    url: str, key: str, *, model: str = "tiny", client: httpx.Client | None = None, **body: Any
) -> httpx.Response:
    payload = {"model": model, "prompt": "hi", "max_tokens": 2, "temperature": 0, **body}
    payload = {k: v for k, v in payload.items() if v is not None}  # None: leave the field out
    headers = {"Authorization": f"Bearer {key}"}
    if client is not None:
        return client.post(url + "/v1/completions", json=payload, headers=headers)
    return httpx.post(url + "/v1/completions", json=payload, headers=headers, timeout=60)


async def burst(urls: Sequence[str], key: str, n: int, *, model: str = "tiny") -> list[httpx.Response]:
    """`n` concurrent completions, spread over `urls` in turn."""
    async with httpx.AsyncClient(timeout=60) as client:
        calls = [
            client.post(
                urls[i % len(urls)] + "/v1/completions",
                json={"model": model, "prompt": "hi", "max_tokens": 2, "temperature": 0},
                headers={"Authorization": f"Bearer {key}"},
            )
            for i in range(n)
        ]
        return list(await asyncio.gather(*calls))


def statuses(responses: Sequence[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


@contextmanager
def engines_frozen(pids: Sequence[int]) -> Iterator[None]:
    """SIGSTOP the engines, SIGCONT on exit: a request that reached one cannot end meanwhile, so a
    concurrency slot stays held for as long as the test needs, with no sleeps and no race."""
    assert pids, "no engine process to freeze"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def burst_while_frozen(
    urls: Sequence[str], key: str, n: int, *, admitted: int, engines: Sequence[int], timeout_s: float = 60
) -> list[httpx.Response]:
    """`n` concurrent completions while the engines are frozen.

    Requests refused at admission answer at once; admitted ones reach an engine and hang there
    until the thaw. So the test waits for the `n - admitted` early answers (an event, not a
    sleep) and only then thaws: if more than `admitted` got in, the early answers never all
    arrive and the wait fails with what did.
    """
    async with httpx.AsyncClient(timeout=120) as client:
        tasks = []
        early: list[int] = []
        with engines_frozen(engines):
            for i in range(n):
                call = client.post(
                    urls[i % len(urls)] + "/v1/completions",
                    json={"model": "tiny", "prompt": "hi", "max_tokens": 2, "temperature": 0},
                    headers={"Authorization": f"Bearer {key}"},
                )
                tasks.append(asyncio.ensure_future(call))
            try:
                for next_done in asyncio.as_completed(tasks, timeout=timeout_s):
                    early.append((await next_done).status_code)
                    if len(early) == n - admitted:
                        break
            except TimeoutError:
                raise AssertionError(
                    f"{len(early)} of {n} answered while the engines were frozen ({early}); "
                    f"expected {n - admitted}: more than {admitted} were admitted"
                ) from None
        return list(await asyncio.gather(*tasks))


@contextmanager
def daemon_up(home: Path, *, llama_server_bin: Path, tiny_gguf: Path, **env: str) -> Iterator[ServedDaemon]:
    """A daemon on a free port in `home`; afterwards its models stopped, its engines gone, `down`."""
    cli = Cortexctl(home=home, port=free_port(), extra_env={})
    daemon: ServedDaemon | None = None
    try:
        daemon = up(cli, llama_server_bin=llama_server_bin, tiny_gguf=tiny_gguf, **env)
        yield daemon
    finally:
        engines = _engine_processes(daemon)
        proc = cli.run("model", "list", "--json")
        if proc.returncode == 0:  # engines outlive a daemon by design: stop them explicitly
            for model in json.loads(proc.stdout):
                if model.get("state") != "stopped":
                    cli.run("model", "stop", model["name"])
        psutil.wait_procs(engines, timeout=30)
        cli.run("down")
        for engine in engines:  # only what this daemon started, by pid
            if engine.is_running():
                engine.kill()


def _engine_processes(daemon: ServedDaemon | None) -> list[psutil.Process]:
    if daemon is None:
        return []
    try:
        return [psutil.Process(pid) for pid in daemon.engine_pids()]
    except (psutil.Error, AssertionError):
        return []
