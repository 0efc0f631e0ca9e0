"""What Prometheus instrumentation costs the gateway: CPU per request, metrics on vs off, same run.

Run (from the repository root, in the project's venv):

    python bench/metrics_overhead_bench.py [--requests 2000] [--rounds 5] [--concurrency 8]

Two real daemons (bench/gateway_bench.py's gateway process: create_app + uvicorn, SQLite,
usage metering on) serve the same mock OpenAI upstream; one with `metrics_enabled`
on (the default), one with it off. Rounds alternate between them so drift in machine
load hits both alike. Each round sends --requests chat completions (a quarter of them
streamed) at --concurrency and reads the daemon process's CPU time (user + system,
psutil) before and after: CPU per request. The result is the median over rounds and the
ratio on/off; the issue's bar is ≤ 5 % more CPU per request. Whole-process CPU on a busy
shared VM is noisy (a few %), so it also times the per-request hook itself in-process
(`GatewayMetrics.observe` on a usage row) and one /metrics scrape (once per Prometheus
scrape interval, not per request).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_bench import MODEL, Conn, build_request, free_port, wait_http_ok, wait_port  # noqa: E402

GATEWAY_BENCH = Path(__file__).resolve().parent / "gateway_bench.py"


def spawn(args: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, str(GATEWAY_BENCH), *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


async def drive(port: int, raws: list[bytes], *, concurrency: int) -> int:
    conns = [await Conn.open(port) for _ in range(concurrency)]
    queue = list(raws)
    errors = 0

    async def worker(conn: Conn) -> None:
        nonlocal errors
        while queue:
            status, _ = await conn.request(queue.pop())
            errors += status != 200

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.close()
    return errors


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="cortex-metrics-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        mock = free_port()
        procs.append(spawn(["--_serve", "mock", str(mock)], log=tmp / "mock.log", env={}))
        wait_port(mock)
        upstreams = json.dumps({MODEL: f"http://127.0.0.1:{mock}"})
        gateways: dict[str, tuple[int, psutil.Process, str]] = {}
        for mode, flag in (("on", "true"), ("off", "false")):
            port, home = free_port(), tmp / f"home-{mode}"
            proc = spawn(
                ["--_serve", "gateway", str(port), str(home), upstreams],
                log=tmp / f"gw-{mode}.log",
                env={"CORTEX_METRICS_ENABLED": flag},
            )
            procs.append(proc)
            wait_http_ok(f"http://127.0.0.1:{port}/health")
            gateways[mode] = (port, psutil.Process(proc.pid), (home / "admin.token").read_text().strip())
        metrics_text = httpx.get(f"http://127.0.0.1:{gateways['on'][0]}/metrics", timeout=10).text
        assert "cortex_requests_total" in metrics_text
        assert httpx.get(f"http://127.0.0.1:{gateways['off'][0]}/metrics", timeout=10).status_code == 404

        chat = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 24}

        def batch(token: str) -> list[bytes]:
            plain = build_request("/v1/chat/completions", chat, token=token)
            stream = build_request("/v1/chat/completions", {**chat, "stream": True}, token=token)
            return [stream if i % 4 == 0 else plain for i in range(args.requests)]

        for port, _, token in gateways.values():  # warm-up: pools, caches, label children
            await drive(port, batch(token)[:200], concurrency=args.concurrency)
        per_request: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(args.rounds):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                port, gateway, token = gateways[mode]
                raws = batch(token)
                before = cpu_s(gateway)
                errors = await drive(port, raws, concurrency=args.concurrency)
                used = cpu_s(gateway) - before
                assert errors == 0, f"{errors} errors with metrics {mode}"
                per_request[mode].append(used / len(raws) * 1e6)
        scrape = []
        for _ in range(5):
            t0 = time.perf_counter()
            httpx.get(f"http://127.0.0.1:{gateways['on'][0]}/metrics", timeout=10)
            scrape.append((time.perf_counter() - t0) * 1000)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    on, off = statistics.median(per_request["on"]), statistics.median(per_request["off"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "cpu_us_per_request": {"on": round(on, 1), "off": round(off, 1)},
        "rounds_us": per_request,
        "overhead_ratio": round(on / off - 1, 4),
        "scrape_ms_median": round(statistics.median(scrape), 1),
        "series_exposed": sum(1 for line in metrics_text.splitlines() if line and not line.startswith("#")),
    }


def observe_cost_us(n: int = 200_000) -> float:
    """In-process: what GatewayMetrics.observe costs per usage row (label children warm)."""
    from prometheus_client import CollectorRegistry

    from cortex_server.services.observability.gateway import GatewayMetrics

    metrics = GatewayMetrics(CollectorRegistry())
    row = {"endpoint": "chat.completions", "model": MODEL, "status_code": 200, "latency_ms": 812.5,
           "ttft_ms": 41.0, "prompt_tokens": 12, "completion_tokens": 24, "streamed": False,
           "cancelled": False, "replica": f"{MODEL}/0"}  # fmt: skip
    metrics.observe(row)
    t0 = time.perf_counter()
    for _ in range(n):
        metrics.observe(row)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="requests per round and mode")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=8)
    result = asyncio.run(run(ap.parse_args()))
    result["observe_us_per_row"] = round(observe_cost_us(), 2)
    cpu = result["cpu_us_per_request"]
    print(
        f"gateway CPU per request: metrics on {cpu['on']:.0f} µs, off {cpu['off']:.0f} µs"
        f" → overhead {result['overhead_ratio'] * 100:+.1f} % (bar: ≤ 5 %);"
        f" one /metrics scrape {result['scrape_ms_median']} ms"
    )
    share = result["observe_us_per_row"] / cpu["off"] * 100
    print(
        f"GatewayMetrics.observe alone: {result['observe_us_per_row']} µs per request ({share:.2f} % of it)"
    )
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
