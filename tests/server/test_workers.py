"""`cortexctl serve --workers N`: N processes really serve the one port, exactly one supervises
engines, and the routing registry the supervising worker builds reaches the others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cortex_server.services.gateway import registry_mirror
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from cortex_server.workers import MAX_DEFAULT_WORKERS, check_workers, default_workers
from cortexctl.core.errors import ConfigError
from cortexctl.core.settings import Settings
from cortexctl.runtimes.base import DEFAULT_DOCKER_SOCKET
from tests.conftest import free_port
from tests.reliability.conftest import PrivateRedis

REPO = Path(__file__).resolve().parents[2]


def test_every_core_by_default_with_redis_and_postgresql_else_one(tmp_path: Path) -> None:
    alone = Settings(home=tmp_path / "h")
    assert default_workers(alone) == 1  # in-process limits cannot be shared: one worker
    with pytest.raises(ConfigError, match="CORTEX_REDIS_URL"):
        check_workers(alone, 2)
    shared = Settings(home=tmp_path / "h", redis_url="redis://127.0.0.1:1/0")
    assert default_workers(shared) == 1  # SQLite: one writer at a time
    check_workers(shared, 2)  # asked for: allowed
    scale_out = shared.model_copy(update={"database_url": "postgresql+psycopg://u@127.0.0.1:1/db"})
    cores = len(os.sched_getaffinity(0))
    assert default_workers(scale_out) == min(cores, MAX_DEFAULT_WORKERS)
    assert default_workers(shared.model_copy(update={"workers": 3})) == 3  # CORTEX_WORKERS wins
    with pytest.raises(ConfigError, match="CORTEX_REDIS_URL"):
        check_workers(alone, default_workers(alone.model_copy(update={"workers": 2})))


def _served(name: str, *, healthy: bool, key: str) -> ServedModel:
    replica = ReplicaEndpoint(
        model_id=7,
        model_name=name,
        replica_index=0,
        base_url="http://127.0.0.1:9",
        healthy=healthy,
        api_key=key,
    )
    return ServedModel(
        served_name=name, engine="llamacpp", state="running", max_model_len=4096, replicas=[replica]
    )


async def test_the_registry_mirror_carries_models_replicas_and_engine_keys(tmp_path: Path) -> None:
    path = tmp_path / "run" / "registry.json"
    owner, follower = ModelRegistry(), ModelRegistry()
    owner.put(_served("chat", healthy=True, key="k1"))
    publish = asyncio.create_task(registry_mirror.publish(owner, path, poll_s=0.01))
    follow = asyncio.create_task(registry_mirror.follow(follower, path, poll_s=0.01))
    try:

        async def until(check: object) -> None:
            deadline = time.monotonic() + 10
            while not check() and time.monotonic() < deadline:  # type: ignore[operator]
                await asyncio.sleep(0.01)

        await until(lambda: follower.get("chat") is not None)
        got = follower.require("chat")
        assert got.max_model_len == 4096 and got.replicas[0].api_key == "k1" and got.replicas[0].healthy
        assert got.replicas[0].auth  # the engine-key header is rebuilt on the follower's side
        assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds engine keys
        owner.mark_replica_health("chat", "chat/0", healthy=False)
        await until(lambda: not follower.require("chat").replicas[0].healthy)
        assert not follower.require("chat").replicas[0].healthy
        owner.remove("chat")
        owner.put(_served("other", healthy=True, key="k2"))
        await until(lambda: follower.get("chat") is None and follower.get("other") is not None)
        assert follower.get("chat") is None and follower.require("other").replicas[0].api_key == "k2"
    finally:
        publish.cancel()
        follow.cancel()
        await asyncio.gather(publish, follow, return_exceptions=True)


class ServeWorkers:
    """`cortexctl serve --workers 2` in a process of its own, on a home and port of the test's."""

    def __init__(self, tmp_path: Path, redis_url: str, **extra_env: str) -> None:
        self.tmp_path, self.home, port = tmp_path, tmp_path / "home", free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
        env.update(
            CORTEX_HOME=str(self.home),
            CORTEX_PORT=str(port),
            CORTEX_REDIS_URL=redis_url,
            CORTEX_REDIS_KEY_PREFIX=f"test-{uuid.uuid4().hex[:8]}:",
            **extra_env,
        )
        self.log_path = tmp_path / "serve.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cortexctl", "serve", "--workers", "2"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def both_workers(self) -> dict[int, dict[str, object]]:
        """/admin/system of each worker, once requests have landed on both (pid → body)."""
        deadline = time.monotonic() + 60
        seen: dict[int, dict[str, object]] = {}
        while len(seen) < 2 and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            token_file = self.home / "admin.token"
            if not token_file.exists():
                time.sleep(0.2)
                continue
            try:  # a new connection each time: the kernel spreads connections over the workers
                r = httpx.get(self.url + "/admin/system", headers=self.admin, timeout=10)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if r.status_code == 200:
                body = r.json()
                seen[body["pid"]] = body
        return seen

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {(self.home / 'admin.token').read_text().strip()}"}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def test_n_workers_serve_the_port_and_exactly_one_supervises(tmp_path: Path, redis_url: str) -> None:
    serve = ServeWorkers(tmp_path, redis_url)
    try:
        seen = serve.both_workers()
        assert len(seen) == 2, f"requests landed on {len(seen)} worker(s): {sorted(seen)}"
        children = {p.pid for p in psutil.Process(serve.proc.pid).children(recursive=True)}
        assert set(seen) <= children  # the workers are the serve command's own processes
        assert sorted(b["worker"]["index"] for b in seen.values()) == [0, 1]  # type: ignore[index]
        supervising = [b for b in seen.values() if b["supervising"]]
        assert len(supervising) == 1 and supervising[0]["worker"]["index"] == 0  # type: ignore[index]
    finally:
        code = serve.stop()
    assert code == 0, serve.log()


def test_a_key_revoked_while_redis_is_down_stops_on_every_worker_at_once(tmp_path: Path) -> None:
    """The revoking worker tells the other directly: no wait for the auth cache's TTL."""
    redis_server = PrivateRedis(tmp_path).start()
    serve = ServeWorkers(tmp_path, redis_server.url)
    try:
        assert len(serve.both_workers()) == 2, serve.log()
        r = httpx.post(
            serve.url + "/admin/keys", json={"name": "k", "scopes": ["inference"]}, headers=serve.admin
        )
        assert r.status_code == 201, r.text
        key = {"Authorization": f"Bearer {r.json()['key']}"}

        def statuses(n: int) -> list[int]:  # fresh connections: both workers answer some
            return [
                httpx.get(serve.url + "/v1/models", headers=key, timeout=10).status_code for _ in range(n)
            ]

        redis_server.stop()  # the Redis channel is gone: revocations cannot travel through it
        assert set(statuses(30)) == {200}  # both workers verified the key just now: cached 2 s
        r = httpx.post(serve.url + "/admin/keys/k/revoke", headers=serve.admin, timeout=10)
        assert r.status_code == 200, r.text
        after = statuses(30)
    finally:
        code = serve.stop()
        redis_server.stop()
    assert set(after) == {401}, f"the revoked key was still served by a worker: {after}"
    assert code == 0, serve.log()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_any_worker_answers_metrics_for_all_of_them(tmp_path: Path, redis_url: str) -> None:
    """A scrape lands on either worker; each counts only what it served; the answer is the sum."""
    listen = f"127.0.0.1:{free_port()}"
    serve = ServeWorkers(tmp_path, redis_url, CORTEX_METRICS_LISTEN=listen)
    try:
        assert len(serve.both_workers()) == 2, serve.log()
        wrong = {"Authorization": "Bearer sk-cortex-not-a-key"}
        refused = [
            httpx.get(serve.url + "/v1/models", headers=wrong, timeout=10).status_code for _ in range(20)
        ]
        scrapes = [httpx.get(serve.url + "/metrics", timeout=30).text for _ in range(6)]
        scrapes.append(httpx.get(f"http://{listen}/metrics", timeout=30).text)  # worker 0's listener
    finally:
        code = serve.stop()
    assert set(refused) <= {401, 429} and len(refused) == 20
    for text in scrapes:
        samples = _samples(text)
        rejected = samples["cortex_auth_rejections_total"] + samples["cortex_ratelimit_rejections_total"]
        assert sum(v for _, v in rejected) == 20, f"one worker's counters, not the sum: {rejected}"
        assert {labels["worker"] for labels, _ in samples["process_resident_memory_bytes"]} == {"0", "1"}
        assert samples["cortex_metrics_workers_missing"] == [({}, 0.0)]
        assert [labels for labels, _ in samples["cortex_host_cpu_count"]] == [{}]  # daemon-wide: once
    assert code == 0, serve.log()


@pytest.mark.parametrize("docker_socket", ["absent", "the host's"])
def test_a_worker_imports_none_of_what_its_hot_path_never_needs(tmp_path: Path, docker_socket: str) -> None:
    """Idle RSS per worker: numpy (gguf's reader), migrations (alembic, which brings mako and
    pygments), httpx's command-line client (rich, click, pygments), redis without CORTEX_REDIS_URL,
    and the docker SDK unless a container of this installation runs (asked over the Engine's API
    where one answers) stay out of a worker until something really asks for them. The probe takes
    a worker's own steps: its imports, the app, uvicorn's config and the supervisor's adoption."""
    probe = (
        "import sys; from cortex_server.workers import without_unused_modules; without_unused_modules(); "
        "import cortexctl.runtimes.base as runtimes; runtimes.DEFAULT_DOCKER_SOCKET = sys.argv[2]; "
        "import uvicorn; from cortex_server.app import build_context, build_supervisor, create_app; "
        "from cortex_server.main import server_options; from cortexctl.core.settings import Settings; "
        "settings = Settings(home=sys.argv[1]); app = create_app(settings); "
        "uvicorn.Config(app, **server_options(settings)).load(); "
        "adopters = build_supervisor(build_context(settings, worker=None)).adopters('a-fresh-installation'); "
        "assert [r.name for r in adopters] == ['process'], adopters; "
        "import cortexctl.validation, httpx; "
        # gguf.constants alone is gguf's tables, loaded without the package (gguf_constants.py)
        "print(sorted({m.split('.')[0] for m in sys.modules if m != 'gguf.constants'} & set(sys.argv[3:])))"
    )
    heavy = ["numpy", "gguf", "alembic", "mako", "pygments", "rich", "docker", "requests", "jinja2", "redis"]
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST" and not k.startswith("CORTEX_")}
    socket_path = str(tmp_path / "no-docker.sock") if docker_socket == "absent" else DEFAULT_DOCKER_SOCKET
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "home"), socket_path, *heavy],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"a worker loads {out.stdout.strip()}"


def test_a_daemon_restarting_on_a_current_schema_never_imports_alembic(tmp_path: Path) -> None:
    """alembic (with mako and pygments) is imported only where there is something to migrate: a
    daemon's first start migrates; every later start finds the schema current and leaves it out."""
    probe = (
        "import sys; from cortex_server.services.prepare import prepare_database; "
        "from cortexctl.core.settings import Settings; "
        "prepare_database(Settings(home=sys.argv[1]), shows_password=False); "
        "print('alembic' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}

    def start() -> str:
        argv = [sys.executable, "-c", probe, str(tmp_path / "home")]
        out = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip()

    assert start() == "True"  # a fresh home: migrated
    assert start() == "False"  # current: alembic stays out


def test_ggufs_tables_without_gguf_are_ggufs_own() -> None:
    """validation/gguf_constants.py loads gguf/constants.py alone; a later `import gguf` must reuse
    it (one set of enums, so a type read by either compares equal) and gguf must still work."""
    probe = (
        "import sys; from cortexctl.validation import gguf_constants as c; "
        "assert 'numpy' not in sys.modules and 'gguf' not in sys.modules; "
        "import gguf; "
        "assert gguf.GGMLQuantizationType is c.GGMLQuantizationType; "
        "assert gguf.GGUFValueType is c.GGUFValueType; "
        "assert gguf.GGML_QUANT_SIZES is c.GGML_QUANT_SIZES and gguf.LlamaFileType is c.LlamaFileType; "
        "assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_K] == (256, 144); "
        "print(len(gguf.GGUFWriter.__mro__) > 0)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]
