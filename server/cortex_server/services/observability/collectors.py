"""Scrape-time collectors: what is read when Prometheus asks, never on the request path.

- models and replicas: lifecycle state as one-hot gauges, restarts, last exit code
  (from the database, so every daemon sharing it reports the same), load duration
  (from this daemon's supervisor), healthy replicas, in-flight requests and breaker
  state (from the routing registry);
- metering: records waiting, spool size, records written/spooled/dropped;
- host: CPU, memory, disk of $CORTEX_HOME and the model store, per-engine CPU/RSS;
- GPUs (NVML): utilisation, memory, temperature, power, memory per engine process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cortex_server.db.models import Model, ModelReplica
from cortex_server.services.lifecycle import State
from cortex_server.services.observability.host import Nvml, disks

if TYPE_CHECKING:
    from cortex_server.context import AppContext

log = logging.getLogger(__name__)

STATES = tuple(s.value for s in State)


class ModelCollector(Collector):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        yield from self._from_database()
        yield from self._from_registry()
        yield from self._from_supervisor()

    def _from_database(self) -> Iterator[Metric]:
        model_state = GaugeMetricFamily(
            "cortex_model_state", "1 for the model's current lifecycle state.", labels=["model", "state"]
        )
        desired = GaugeMetricFamily(
            "cortex_model_desired_running", "1 if an admin wants the model running.", labels=["model"]
        )
        replica_state = GaugeMetricFamily(
            "cortex_replica_state",
            "1 for the replica's lifecycle state.",
            labels=["model", "replica", "state"],
        )
        restarts = GaugeMetricFamily(
            "cortex_replica_restarts",
            "Crash restarts in the current run of restarts (reset once stable).",
            labels=["model", "replica"],
        )
        last_exit = GaugeMetricFamily(
            "cortex_replica_last_exit_code",
            "Exit code of the replica's last exit.",
            labels=["model", "replica"],
        )
        try:
            with self.ctx.session_factory() as session:
                models = session.execute(select(Model.id, Model.name, Model.state, Model.desired_state)).all()
                replicas = session.execute(
                    select(
                        ModelReplica.model_id,
                        ModelReplica.replica_index,
                        ModelReplica.state,
                        ModelReplica.restart_count,
                        ModelReplica.last_exit_code,
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read model states: %s", type(exc).__name__)
            return
        names = {m.id: m.name for m in models}
        for m in models:
            for state in STATES:
                model_state.add_metric([m.name, state], 1.0 if m.state == state else 0.0)
            desired.add_metric([m.name], 1.0 if m.desired_state == "running" else 0.0)
        for r in replicas:
            name = names.get(r.model_id)
            if name is None:
                continue
            key = f"{name}/{r.replica_index}"
            for state in STATES:
                replica_state.add_metric([name, key, state], 1.0 if r.state == state else 0.0)
            restarts.add_metric([name, key], float(r.restart_count))
            if r.last_exit_code is not None:
                last_exit.add_metric([name, key], float(r.last_exit_code))
        yield from (model_state, desired, replica_state, restarts, last_exit)

    def _from_registry(self) -> Iterator[Metric]:
        healthy = GaugeMetricFamily(
            "cortex_model_healthy_replicas", "Replicas the gateway may route to.", labels=["model"]
        )
        in_flight = GaugeMetricFamily(
            "cortex_requests_in_flight",
            "Requests being proxied now, per replica.",
            labels=["model", "replica"],
        )
        breaker = GaugeMetricFamily(
            "cortex_replica_breaker_open",
            "1 while the gateway's circuit breaker keeps the replica out of rotation.",
            labels=["model", "replica"],
        )
        threshold = self.ctx.settings.circuit_breaker_failures
        now = time.monotonic()
        for served in self.ctx.registry.all():
            healthy.add_metric([served.served_name], float(len(served.healthy_replicas())))
            for r in served.replicas:
                in_flight.add_metric([served.served_name, r.key], float(r.outstanding))
                is_open = r.ejected_until > now or r.consecutive_failures >= threshold
                breaker.add_metric([served.served_name, r.key], 1.0 if is_open else 0.0)
        yield from (healthy, in_flight, breaker)

    def _from_supervisor(self) -> Iterator[Metric]:
        supervisor = self.ctx.supervisor
        if supervisor is None:
            return
        load = GaugeMetricFamily(
            "cortex_replica_load_duration_seconds",
            "How long the replica took from start to ready (this daemon's supervisor).",
            labels=["model", "replica"],
        )
        names = _model_names(self.ctx)
        for live in list(supervisor.live.values()):
            if live.ready_since is None:
                continue
            name = names.get(live.model_id, str(live.model_id))
            load.add_metric([name, f"{name}/{live.replica_index}"], live.ready_since - live.started_at)
        yield load


class MeteringCollector(Collector):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        writer, ctx = self.ctx.usage_writer, self.ctx
        yield GaugeMetricFamily(
            "cortex_usage_pending_records", "Usage records waiting for the writer.", value=writer.pending
        )
        spool = ctx.settings.usage_spool_file
        size = sum(_size(p) for p in (spool, spool.with_name(spool.name + ".replaying")))
        yield GaugeMetricFamily(
            "cortex_usage_spool_bytes", "Usage records spooled while the DB is unreachable.", value=size
        )
        yield CounterMetricFamily(
            "cortex_usage_records_written", "Usage records inserted into the database.", value=writer.written
        )
        yield CounterMetricFamily(
            "cortex_usage_records_spooled", "Usage records that went to the spool.", value=writer.spooled
        )
        dropped = CounterMetricFamily(
            "cortex_records_dropped", "Records lost on purpose or by damage, by kind.", labels=["kind"]
        )
        dropped.add_metric(["usage_spool_unreadable"], float(writer.spool_dropped))
        if ctx.rejections is not None:
            dropped.add_metric(["rejection_counts"], float(ctx.rejections.dropped))
        yield dropped
        journal = writer.journal
        yield GaugeMetricFamily(
            "cortex_usage_journal_bytes", "Usage journal on disk (records not yet in the DB).",
            value=journal.bytes_on_disk,
        )  # fmt: skip
        writable = GaugeMetricFamily(
            "cortex_usage_journal_writable", "1 while usage records are made durable (0: disk full or cap)."
        )
        writable.add_metric([], 0.0 if journal.error else 1.0)
        yield writable
        yield CounterMetricFamily(
            "cortex_usage_records_unjournaled",
            "Usage records served while nothing durable could be written (lost if the daemon dies).",
            value=journal.records_unjournaled,
        )
        db_ok = GaugeMetricFamily("cortex_usage_database_up", "1 while usage inserts succeed.")
        db_ok.add_metric([], 1.0 if writer.db_ok else 0.0)
        yield db_ok


class AuthCollector(Collector):
    """How key verification fares: database lookups, and answers from last-known-good in outages."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        auth = self.ctx.authenticator
        yield CounterMetricFamily(
            "cortex_auth_database_lookups",
            "Key and session verifications that reached the database (cache misses).",
            value=auth.db_lookups,
        )
        yield CounterMetricFamily(
            "cortex_auth_stale_verifications",
            "Key verifications answered from last-known-good while the database was unreachable "
            "(each covers the auth cache TTL; auth_stale_max_s bounds their age).",
            value=auth.stale_served,
        )
        reachable = GaugeMetricFamily(
            "cortex_auth_database_reachable", "0 while key verification skips an unreachable database."
        )
        reachable.add_metric([], 0.0 if auth.database_down else 1.0)
        yield reachable


class HostCollector(Collector):
    """CPU, memory, disks, engine processes and GPUs of this host."""

    def __init__(
        self,
        *,
        disk_paths: dict[str, Path],
        nvml: Nvml,
        engine_pids: Callable[[], dict[int, tuple[str, str]]],
    ) -> None:
        self.disk_paths = disk_paths
        self.nvml = nvml
        self.engine_pids = engine_pids  # pid → (model, replica)
        self._procs: dict[int, psutil.Process] = {}

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "cortex_host_cpu_percent", "Host CPU use since the previous scrape.", value=psutil.cpu_percent()
        )
        yield GaugeMetricFamily("cortex_host_cpu_count", "Logical CPUs.", value=psutil.cpu_count() or 0)
        vm = psutil.virtual_memory()
        mem = GaugeMetricFamily("cortex_host_memory_bytes", "Host memory.", labels=["kind"])
        for kind in ("total", "available", "used"):
            mem.add_metric([kind], float(getattr(vm, kind)))
        yield mem
        disk = GaugeMetricFamily(
            "cortex_disk_bytes", "Filesystem of $CORTEX_HOME and the model store.", labels=["name", "kind"]
        )
        for d in disks(self.disk_paths):
            for kind, value in (("total", d.total_bytes), ("used", d.used_bytes), ("free", d.free_bytes)):
                disk.add_metric([d.name, kind], float(value))
        yield disk
        yield from self._engines()
        yield from self._gpus()

    def _engines(self) -> Iterator[Metric]:
        cpu = GaugeMetricFamily(
            "cortex_engine_cpu_percent",
            "Engine process CPU use (100 = one core).",
            labels=["model", "replica"],
        )
        rss = GaugeMetricFamily(
            "cortex_engine_memory_rss_bytes", "Engine process resident memory.", labels=["model", "replica"]
        )
        pids = self.engine_pids()
        for pid in [p for p in self._procs if p not in pids]:
            del self._procs[pid]
        for pid, (model, replica) in pids.items():
            try:
                proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                with proc.oneshot():
                    cpu.add_metric([model, replica], proc.cpu_percent())
                    rss.add_metric([model, replica], float(proc.memory_info().rss))
            except psutil.Error:
                self._procs.pop(pid, None)
        yield from (cpu, rss)

    def _gpus(self) -> Iterator[Metric]:
        gpus = self.nvml.gpus()
        if not gpus:
            return  # no GPU: no GPU series
        labels = ["gpu", "name"]
        util = GaugeMetricFamily("cortex_gpu_utilization_percent", "GPU utilisation.", labels=labels)
        used = GaugeMetricFamily("cortex_gpu_memory_used_bytes", "GPU memory in use.", labels=labels)
        total = GaugeMetricFamily("cortex_gpu_memory_total_bytes", "GPU memory.", labels=labels)
        temp = GaugeMetricFamily("cortex_gpu_temperature_celsius", "GPU temperature.", labels=labels)
        power = GaugeMetricFamily("cortex_gpu_power_watts", "GPU power draw.", labels=labels)
        per_engine = GaugeMetricFamily(
            "cortex_gpu_engine_memory_bytes",
            "GPU memory per engine process, where NVML reports it (others: model='other').",
            labels=["gpu", "model", "replica"],
        )
        owners = self.engine_pids()
        for g in gpus:
            key = [str(g.index), g.name]
            if g.utilization_percent is not None:
                util.add_metric(key, g.utilization_percent)
            used.add_metric(key, float(g.memory_used_bytes))
            total.add_metric(key, float(g.memory_total_bytes))
            if g.temperature_c is not None:
                temp.add_metric(key, g.temperature_c)
            if g.power_w is not None:
                power.add_metric(key, g.power_w)
            sums: dict[tuple[str, str], float] = {}
            for p in g.processes:
                owner = owner_of(p.pid, owners) or ("other", "")
                sums[owner] = sums.get(owner, 0.0) + float(p.used_memory_bytes or 0)
            for (model, replica), value in sums.items():
                per_engine.add_metric([str(g.index), model, replica], value)
        yield from (util, used, total, temp, power, per_engine)


def owner_of(pid: int, owners: dict[int, tuple[str, str]]) -> tuple[str, str] | None:
    """The engine a process belongs to: itself or one of its parents (vLLM's workers are children)."""
    if pid in owners:
        return owners[pid]
    try:
        for parent in psutil.Process(pid).parents():
            if parent.pid in owners:
                return owners[parent.pid]
    except psutil.Error:
        return None
    return None


def engine_pids(ctx: AppContext) -> dict[int, tuple[str, str]]:
    """pid → (model, replica) for the engines this daemon's supervisor runs."""
    supervisor = ctx.supervisor
    if supervisor is None:
        return {}
    names = _model_names(ctx)
    out = {}
    for live in list(supervisor.live.values()):
        if live.handle is not None and live.handle.pid:
            name = names.get(live.model_id, str(live.model_id))
            out[live.handle.pid] = (name, f"{name}/{live.replica_index}")
    return out


def _model_names(ctx: AppContext) -> dict[int, str]:
    out: dict[int, str] = {}
    for served in ctx.registry.all():
        for r in served.replicas:
            out[r.model_id] = r.model_name
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
