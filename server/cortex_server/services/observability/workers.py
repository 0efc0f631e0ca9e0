"""/metrics under `cortexctl serve --workers N`: whichever worker takes the scrape answers for all.

Why: the kernel hands each scrape to any worker, and each worker counts only the requests it
served; a scrape that saw one worker's counters at random would make every rate() wrong. So
each worker serves its own exposition on a private socket (abstract Unix stream, this user
only, services/worker_peers.py names), and the worker that takes the scrape merges them:
per-worker series (requests, tokens, rejections, metering, the process) once per worker with
a `worker` label, which PromQL's sum() folds; daemon-wide series (models, replicas, engines,
host, GPUs) once, from the supervising worker 0, which owns that state. A worker that does
not answer within the timeout is left out of that scrape (it is restarting) and counted in
`cortex_metrics_workers_missing`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from cortex_server.services.worker_peers import UCRED, peer_names

log = logging.getLogger(__name__)

# series about state worker 0 alone holds (its supervisor, the host): exported once, unlabelled
DAEMON_WIDE = (
    "cortex_model_",
    "cortex_replica_",
    "cortex_host_",
    "cortex_disk_",
    "cortex_engine_",
    "cortex_gpu_",
    "llamacpp:",
    "vllm:",
)
FETCH_TIMEOUT_S = 5.0


class WorkerMetrics(Collector):
    """This worker's side: serve its own text to the others, and merge everyone's at scrape time."""

    def __init__(self, home: Path, *, index: int, count: int, render_own: Callable[[], bytes]) -> None:
        self.index = index
        self.names = peer_names(home, count, channel="metrics")
        self.render_own = render_own
        self.merged = CollectorRegistry(auto_describe=False)
        self.merged.register(self)

    async def serve(self) -> None:
        """Run for the worker's lifetime: answer the other workers' fetches with our text."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.names[self.index])
        except OSError as exc:  # a previous worker of this home is still exiting
            log.warning("other workers' scrapes will miss this one (%s)", exc.strerror or exc)
            sock.close()
            return
        server = await asyncio.start_unix_server(self._answer, sock=sock)
        async with server:
            await server.serve_forever()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = writer.get_extra_info("socket")
            creds = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size)
            if UCRED.unpack(creds)[1] == os.getuid():
                writer.write(await asyncio.to_thread(self.render_own))
                await writer.drain()
        finally:
            writer.close()

    def render(self) -> bytes:
        """The merged exposition (blocking: fetches from the other workers)."""
        return generate_latest(self.merged)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        texts = {self.index: self.render_own()}
        missing = 0
        for i, name in enumerate(self.names):
            if i != self.index:
                try:
                    texts[i] = _fetch(name)
                except OSError as exc:
                    log.warning("worker %d left out of this scrape (%s)", i, exc.strerror or exc)
                    missing += 1
        parsed: dict[int, list[Metric]] = {}
        for i, text in texts.items():
            try:  # a worker that died mid-answer sent a torn text
                parsed[i] = list(text_string_to_metric_families(text.decode()))
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("worker %d left out of this scrape (unreadable answer: %s)", i, exc)
                missing += 1
        yield from merge(parsed)
        gauge = GaugeMetricFamily(
            "cortex_metrics_workers_missing", "Workers that did not answer this scrape (restarting)."
        )
        gauge.add_metric([], missing)
        yield gauge


def _fetch(name: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(FETCH_TIMEOUT_S)
        sock.connect(name)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def merge(workers: dict[int, list[Metric]]) -> list[Metric]:
    """Each worker's families into one set: per-worker series labelled, daemon-wide ones once."""
    families: dict[str, Metric] = {}
    for index in sorted(workers):
        for family in workers[index]:
            wide = family.name.startswith(DAEMON_WIDE)
            if wide and index != 0:
                continue
            out = families.get(family.name)
            if out is None:
                out = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = out
            for sample in family.samples:
                labels = sample.labels if wide else {**sample.labels, "worker": str(index)}
                out.add_sample(sample.name, labels, sample.value, sample.timestamp)
    return list(families.values())
