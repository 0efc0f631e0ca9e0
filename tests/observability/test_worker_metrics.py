"""Merging the workers' /metrics: per-worker series labelled and summable, daemon-wide ones once,
a missing worker counted, and another user's fetch answered with nothing."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cortex_server.services.observability.workers import WorkerMetrics
from cortex_server.services.worker_peers import peer_names


def exposition(requests: float, host_cpu: float) -> bytes:
    return (
        "# HELP cortex_requests_total Requests.\n# TYPE cortex_requests_total counter\n"
        f'cortex_requests_total{{model="m",route="chat.completions",status_class="2xx"}} {requests}\n'
        "# HELP cortex_host_cpu_percent CPU.\n# TYPE cortex_host_cpu_percent gauge\n"
        f"cortex_host_cpu_percent {host_cpu}\n"
    ).encode()


def samples(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


async def test_a_scrape_on_any_worker_carries_every_workers_series(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workers = [
        WorkerMetrics(home, index=i, count=3, render_own=lambda i=i: exposition(10.0 * (i + 1), 50.0 + i))
        for i in range(3)
    ]
    servers = [asyncio.create_task(w.serve()) for w in workers[:2]]  # worker 2 is restarting
    await asyncio.sleep(0.2)
    try:
        merged = samples(await asyncio.to_thread(workers[1].render))
    finally:
        for task in servers:
            task.cancel()
        await asyncio.gather(*servers, return_exceptions=True)
    requests = merged["cortex_requests_total"]
    assert sorted((labels["worker"], value) for labels, value in requests) == [("0", 10.0), ("1", 20.0)]
    assert merged["cortex_host_cpu_percent"] == [({}, 50.0)]  # daemon-wide: worker 0's, once
    assert merged["cortex_metrics_workers_missing"] == [({}, 1.0)]


async def test_another_user_fetches_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    worker = WorkerMetrics(home, index=0, count=2, render_own=lambda: exposition(1.0, 1.0))
    server = asyncio.create_task(worker.serve())
    await asyncio.sleep(0.2)
    try:
        ours = await asyncio.to_thread(_fetch_as, None, peer_names(home, 2, channel="metrics")[0])
        theirs = await asyncio.to_thread(_fetch_as, 65534, peer_names(home, 2, channel="metrics")[0])
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    assert b"cortex_requests_total" in ours
    if os.getuid() == 0:  # as root (CI) the child can become someone else
        assert theirs == b""


def _fetch_as(uid: int | None, name: str) -> bytes:
    """Connect from a forked child that is user `uid` (None: this user); what it read comes back."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: system calls only, then out
        code = 1
        try:
            if uid is not None and os.getuid() == 0:
                os.setgid(uid)
                os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(name)
                while chunk := sock.recv(65536):
                    os.write(write, chunk)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks)


async def test_a_torn_answer_leaves_that_worker_out_and_the_scrape_still_answers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    torn = exposition(1.0, 1.0)[:110]  # a worker that died mid-answer: cut inside a sample's labels
    healthy = WorkerMetrics(home, index=0, count=2, render_own=lambda: exposition(5.0, 7.0))
    dying = WorkerMetrics(home, index=1, count=2, render_own=lambda: torn)
    server = asyncio.create_task(dying.serve())
    await asyncio.sleep(0.2)
    try:
        merged = samples(await asyncio.to_thread(healthy.render))
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    assert merged["cortex_requests_total"] == [
        ({"model": "m", "route": "chat.completions", "status_class": "2xx", "worker": "0"}, 5.0)
    ]
    assert merged["cortex_metrics_workers_missing"] == [({}, 1.0)]
