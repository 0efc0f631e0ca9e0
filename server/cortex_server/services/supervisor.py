"""The supervisor: reconcile desired model state (DB) with the engines actually running.

It is the one writer of model and replica states: admin calls only record intent
(desired state, start and restart requests; services/models.py), which the supervisor
takes here, and each replica move is checked against the lifecycle's transition table.

One loop per daemon. Each tick it loads the models, starts missing replicas, checks
that running ones are alive, probes their health, restarts crashes with backoff,
stops what should not run, writes states back, and refreshes the routing registry.
A new daemon adopts the engines an old one left running; stopping the daemon
never stops engines.

Each replica start draws a fresh engine key (`new_engine_key`): the engine gets it
in its environment, the runtime keeps it with the handle (pid file 0600 or the
container's environment, so adoption after a daemon restart keeps it), and the
probes here and the gateway's requests (through the registry) send it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.db.models import Model, ModelReplica, utcnow
from cortex_server.services import models
from cortex_server.services.bootstrap import ensure_installation
from cortex_server.services.lifecycle import (
    MAX_RESTARTS,
    STABLE_AFTER_S,
    DesiredState,
    State,
    aggregate_state,
    check_transition,
    restart_delay_s,
)
from cortex_server.services.ports import PortAllocator
from cortex_server.services.probe_transport import ProbeTransport
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from cortex_server.services.supervisor_lease import Leases, followed_models, leases_for
from cortexctl.core.daemon import port_owner
from cortexctl.core.errors import CortexError
from cortexctl.core.preflight import preflight
from cortexctl.core.settings import Settings
from cortexctl.engines.base import (
    Diagnosis,
    Engine,
    LaunchSpec,
    ProbeState,
    auth_headers,
    new_engine_key,
)
from cortexctl.engines.registry import get_engine
from cortexctl.recipes.placement import GpuTenant
from cortexctl.recipes.schema import Recipe
from cortexctl.runtimes.base import RunningEngine, Runtime
from cortexctl.validation import ValidationReport
from cortexctl.validation.checks import tenant_of

if TYPE_CHECKING:
    from cortex_server.services.observability.engines import EngineMetricsStore

log = logging.getLogger(__name__)

INSTALLATION_LABEL = "cortex.installation"


def _refusal(report: ValidationReport) -> Diagnosis:
    failures = report.failures
    return Diagnosis(
        rule="preflight-failed",
        summary="Start refused by the preflight check: "
        + "; ".join(f"{c.name}: {c.detail}" for c in failures),
        fix=" ".join(c.fix for c in failures if c.fix)
        + " See `cortexctl recipe validate`; start with --force to override.",
        log_lines=[f"FAIL {c.name}: {c.detail}" for c in failures],
    )


RuntimeChooser = Callable[[Recipe], Runtime]
# the runtimes whose leftovers of this installation (its id) are to be adopted on start
AdoptersFor = Callable[[str], list[Runtime]]


@dataclass
class LiveReplica:
    """What this daemon knows about one replica beyond its DB row."""

    model_id: int
    replica_index: int
    engine: Engine
    runtime: Runtime | None = None
    handle: RunningEngine | None = None
    state: State = State.STOPPED
    reason: str | None = None
    started_at: float = 0.0  # monotonic
    ready_since: float | None = None
    next_start_at: float = 0.0
    restart_count: int = 0
    last_exit_code: int | None = None
    diagnosis: dict[str, Any] | None = None
    max_model_len: int | None = None
    gpus: str | tuple[int, ...] = "none"
    tenant: GpuTenant | None = None  # its claim on each of its GPUs (co-location)
    trusted: bool = False  # the engine on the port proved it is ours (see _proves_ours)

    def set(self, state: State, reason: str | None) -> None:
        """Move to `state` (IllegalTransition when the lifecycle does not allow it)."""
        state = check_transition(self.state, state)
        if state != self.state or reason != self.reason:
            log.info(
                "model %s replica %s: %s → %s (%s)",
                self.model_id,
                self.replica_index,
                self.state,
                state,
                reason,
            )
        self.state, self.reason = state, reason


@dataclass
class Supervisor:
    settings: Settings
    session_factory: sessionmaker[Session]
    registry: ModelRegistry
    choose_runtime: RuntimeChooser
    adopters: AdoptersFor = lambda _installation_id: []  # noqa: E731 - a default, not a definition
    interval_s: float = 1.0
    # closes the gateway's connection pools of engines that went away
    prune_upstreams: Callable[[set[str]], Awaitable[None]] | None = None
    engine_metrics: EngineMetricsStore | None = None  # the engines' own /metrics, re-exposed
    live: dict[tuple[int, int], LiveReplica] = field(default_factory=dict)
    forced: set[int] = field(default_factory=set)  # model ids started with --force
    leases: Leases | None = None  # the models this daemon drives (services/supervisor_lease.py)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None
    _ports: PortAllocator | None = None
    _event_loop: asyncio.AbstractEventLoop | None = None
    installation_id: str = ""  # from the DB (bootstrap.ensure_installation), read on start

    # ---- lifecycle of the loop --------------------------------------------------------
    async def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(3.0, connect=1.0), trust_env=False, transport=ProbeTransport()
        )
        self.installation_id = await asyncio.to_thread(self._installation_id)
        self._ports = PortAllocator(
            self.settings.engine_port_range,
            is_free=self._port_is_free,
            session_factory=self.session_factory,
            installation_id=self.installation_id,
        )
        if self.leases is None and self.settings.supervisor_lease:
            self.leases = leases_for(self.settings, self.session_factory)
        await self._adopt()
        self._task = asyncio.create_task(self._loop(), name="cortex-supervisor")

    async def close(self) -> None:
        """Stop supervising. Engines keep running for the next daemon to adopt."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._http is not None:
            await self._http.aclose()
        if self.leases is not None:
            await asyncio.to_thread(self.leases.close)

    def request_start(self, model_id: int, *, force: bool = False) -> None:
        """An admin recorded intent for this model (in the DB): reconcile now. Thread-safe.

        force=True skips the preflight check (the admin accepts that it may not fit)."""
        if force:
            self.forced.add(model_id)
        else:
            self.forced.discard(model_id)
        if self._event_loop is not None:
            self._event_loop.call_soon_threadsafe(self.poke)

    def logs(self, model_id: int, replica_index: int, *, tail: int) -> str | None:
        """Recent engine log of a replica this daemon runs (None if it runs none)."""
        live = self.live.get((model_id, replica_index))
        if live is None or live.handle is None or live.runtime is None:
            return None
        return live.runtime.logs(live.handle, tail=tail)

    def poke(self) -> None:
        """Reconcile now (after an admin changed a desired state)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad tick must not end supervision
                log.exception("supervisor tick failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    # ---- one reconcile pass ----------------------------------------------------------
    async def reconcile_once(self) -> None:
        snapshot, others = await self._by_lease(await asyncio.to_thread(self._load))
        wanted: set[tuple[int, int]] = set()
        for entry in snapshot:
            model, recipe = entry.model, entry.recipe
            rows = {r.replica_index: r for r in entry.replicas}
            requested = await self._take_requests(model)
            n = recipe.spec.replicas if model.desired_state == DesiredState.RUNNING else 0
            for idx in range(n):
                wanted.add((model.id, idx))
                live = self._live_for(model.id, idx, recipe, rows.get(idx))
                if requested and live.state == State.FAILED:  # a start request: a fresh set of tries
                    live.diagnosis, live.restart_count, live.next_start_at = None, 0, 0.0
                    live.set(State.STOPPED, "start requested")
                await self._drive(live, model, recipe)
        not_mine = {e.model.id for e in others}  # another daemon drives them: leave them be
        for key in [k for k in self.live if k not in wanted and k[0] not in not_mine]:
            await self._stop(self.live[key], reason="stopped by request")
        probes = [self._probe(r, e) for e in snapshot for r in self._replicas_of(e.model.id)]
        await asyncio.gather(*probes)
        await asyncio.to_thread(self._persist, snapshot)
        self._publish(snapshot, followed_models(others, self.settings))
        if self.prune_upstreams is not None:
            await self.prune_upstreams({r.base_url for m in self.registry.all() for r in m.replicas})

    async def _by_lease(
        self, snapshot: list[models.ModelWithRecipe]
    ) -> tuple[list[models.ModelWithRecipe], list[models.ModelWithRecipe]]:
        """(models this daemon holds the lease of, models another daemon drives)."""
        if self.leases is None:
            return snapshot, []
        held = await asyncio.to_thread(self.leases.refresh, [e.model.id for e in snapshot])
        return [e for e in snapshot if e.model.id in held], [e for e in snapshot if e.model.id not in held]

    async def _take_requests(self, model: Model) -> bool:
        """Act on the admin's start/restart request for `model` and mark it taken; True if any."""
        if model.start_requested_at is None and model.restart_requested_at is None:
            return False
        if model.restart_requested_at is not None:
            for live in self._replicas_of(model.id):
                await self._stop(live, reason="restart requested")
        await asyncio.to_thread(self._clear_requests, model)
        return True

    def _clear_requests(self, model: Model) -> None:
        # Only the requests read this tick: one made meanwhile stays for the next tick.
        taken = [t for t in (model.start_requested_at, model.restart_requested_at) if t is not None]
        with self.session_factory() as session, session.begin():
            session.execute(
                update(Model)
                .where(Model.id == model.id, Model.start_requested_at <= max(taken))
                # a start by hand also closes the crash history (kept until then, see _record_crash)
                .values(
                    start_requested_at=None,
                    diagnosis=None,
                    crash_count=0,
                    last_exit_code=None,
                    last_exit_signal=None,
                    last_crash=None,
                )
            )
            session.execute(
                update(Model)
                .where(Model.id == model.id, Model.restart_requested_at <= max(taken))
                .values(restart_requested_at=None)
            )

    def _live_for(self, model_id: int, idx: int, recipe: Recipe, row: ModelReplica | None) -> LiveReplica:
        key = (model_id, idx)
        if key not in self.live:
            live = LiveReplica(model_id=model_id, replica_index=idx, engine=get_engine(recipe.spec.engine))
            if row is not None and row.state == State.FAILED:  # stays failed until a new start request
                live.state, live.reason, live.diagnosis = State.FAILED, row.state_reason, row.diagnosis
                live.restart_count = row.restart_count
            self.live[key] = live
        return self.live[key]

    def _replicas_of(self, model_id: int) -> list[LiveReplica]:
        return [r for (mid, _), r in sorted(self.live.items()) if mid == model_id]

    async def _drive(self, live: LiveReplica, model: Model, recipe: Recipe) -> None:
        now = time.monotonic()
        if live.state == State.FAILED:
            return
        if live.handle is None:
            if now >= live.next_start_at:
                await self._start(live, model, recipe)
            return
        assert live.runtime is not None
        info = await asyncio.to_thread(live.runtime.status, live.handle)
        if not info.alive:
            await self._on_exit(live, info.exit_code)
            return
        if live.state == State.STARTING:
            live.set(State.LOADING, "engine process up, waiting for it to report ready")
        if (
            live.state in (State.STARTING, State.LOADING)
            and now - live.started_at > recipe.spec.timeouts.load_s
        ):
            logs = await asyncio.to_thread(live.runtime.logs, live.handle)
            diag = live.engine.diagnose(logs) or Diagnosis(
                rule="load-timeout",
                summary=f"The engine did not become ready within {recipe.spec.timeouts.load_s:.0f}s.",
                fix="Check the engine log; raise spec.timeouts.load_s for large models.",
                log_lines=logs.splitlines()[-10:],
            )
            await self._stop(live, reason="load timeout")
            self._fail(live, diag)
        if live.ready_since is not None and now - live.ready_since > STABLE_AFTER_S:
            live.restart_count = 0

    async def _start(self, live: LiveReplica, model: Model, recipe: Recipe) -> None:
        assert self._ports is not None
        try:
            runtime = self.choose_runtime(recipe)
            port = await asyncio.to_thread(
                self._ports.allocate, model_id=model.id, replica_index=live.replica_index
            )
            if live.restart_count == 0 and model.id not in self.forced:
                # A fresh start is checked first; crash restarts are not (it already fit once).
                report = await asyncio.to_thread(
                    preflight,
                    recipe,
                    settings=self.settings,
                    model_id=model.id,
                    port=port,
                    runtime=runtime.name,
                    used_gpus=self.gpus_in_use(exclude_model=model.id, exclude_replica=live.replica_index),
                    replica_index=live.replica_index,
                )
                if not report.ok:
                    await asyncio.to_thread(self._ports.release, port)
                    self._fail(live, _refusal(report))
                    return
            spec = self._owned(
                live.engine.launch_spec(
                    recipe,
                    model_id=model.id,
                    replica_index=live.replica_index,
                    port=port,
                    settings=self.settings,
                    api_key=new_engine_key(),
                )
            )
            try:
                handle = await asyncio.to_thread(runtime.start, spec)
            except CortexError:
                await asyncio.to_thread(self._ports.release, port)
                raise
        except CortexError as exc:
            self._fail(
                live, Diagnosis(rule="start-refused", summary=exc.message, fix=exc.fix or "", log_lines=[])
            )
            return
        live.runtime, live.handle, live.gpus = runtime, handle, spec.gpus
        live.tenant = tenant_of(f"{recipe.spec.served_name} (replica {live.replica_index})", recipe.spec)
        live.started_at, live.ready_since, live.trusted = time.monotonic(), None, False
        live.set(State.STARTING, f"{runtime.name} runtime, port {handle.port}")

    async def _on_exit(self, live: LiveReplica, exit_code: int | None) -> None:
        assert live.runtime is not None and live.handle is not None
        logs = await asyncio.to_thread(live.runtime.logs, live.handle)
        diag = live.engine.diagnose(logs)
        was_ready = live.ready_since is not None
        await asyncio.to_thread(live.runtime.stop, live.handle)  # removes a dead container, reaps a process
        assert self._ports is not None
        await asyncio.to_thread(self._ports.release, live.handle.port)
        live.handle, live.last_exit_code, live.ready_since = None, exit_code, None
        await asyncio.to_thread(self._record_crash, live.model_id, exit_code, diag, logs)
        if diag is not None and not was_ready:
            # It never came up and we know why (bad path, corrupt file, bad flag …): retrying cannot help.
            self._fail(live, diag)
            return
        live.restart_count += 1
        if live.restart_count > MAX_RESTARTS:
            self._fail(
                live,
                diag
                or Diagnosis(
                    rule="crash-loop",
                    summary=f"The engine exited {MAX_RESTARTS + 1} times in a row (last exit {exit_code}).",
                    fix="See `cortexctl model logs NAME` and the lines below; fix the recipe, start again.",
                    log_lines=logs.splitlines()[-10:],
                ),
            )
            return
        delay = restart_delay_s(live.restart_count - 1)
        live.next_start_at = time.monotonic() + delay
        live.set(
            State.STARTING, f"exited with code {exit_code}; restart {live.restart_count} in {delay:.0f}s"
        )

    async def _stop(self, live: LiveReplica, *, reason: str) -> None:
        if live.handle is not None and live.runtime is not None:
            live.set(State.STOPPING, reason)
            await asyncio.to_thread(live.runtime.stop, live.handle)
            if self._ports is not None:
                await asyncio.to_thread(self._ports.release, live.handle.port)
        live.handle, live.ready_since = None, None
        if live.state != State.FAILED:
            live.set(State.STOPPED, reason)
        self.live.pop((live.model_id, live.replica_index), None)

    def _fail(self, live: LiveReplica, diag: Diagnosis) -> None:
        live.diagnosis = {
            "rule": diag.rule,
            "summary": diag.summary,
            "fix": diag.fix,
            "log_lines": diag.log_lines,
        }
        live.set(State.FAILED, diag.summary)

    async def _probe(self, live: LiveReplica, entry: models.ModelWithRecipe) -> None:
        if live.handle is None or live.state not in (State.STARTING, State.LOADING, State.RUNNING):
            return
        assert self._http is not None
        base_url = live.handle.base_url
        try:
            probe = await live.engine.probe(
                self._http, base_url, served_name=entry.recipe.spec.served_name, api_key=live.handle.api_key
            )
        except httpx.HTTPError as exc:
            probe = None
            detail = f"probe failed: {type(exc).__name__}"
        if probe is not None and probe.state == ProbeState.READY and not live.trusted:
            # A remote endpoint is named by its recipe, not found on a port we allocated: the
            # operator vouched for it, and a stray wrong key must not go to a third party.
            live.trusted = live.handle.url is not None or await self._proves_ours(
                base_url, live.handle.api_key
            )
            if not live.trusted:
                probe, detail = None, f"the engine on port {live.handle.port} accepts any key: not ours"
        if probe is not None and probe.state == ProbeState.READY:
            if live.state != State.RUNNING:
                live.ready_since = time.monotonic()
            live.max_model_len = probe.max_model_len or live.max_model_len
            live.set(State.RUNNING, "ready")
            metrics_path = getattr(live.engine, "metrics_path", None)  # None: the engine has none
            if self.engine_metrics is not None and metrics_path:
                await self.engine_metrics.maybe_scrape(
                    self._http,
                    base_url + metrics_path,
                    model=entry.model.name,
                    replica=f"{entry.model.name}/{live.replica_index}",
                    headers=auth_headers(live.handle.api_key),  # /metrics needs the engine key too
                )
        elif live.state == State.RUNNING:
            # It was serving and stopped answering: out of rotation at once; exit handling restarts it.
            live.ready_since = None
            live.set(State.LOADING, probe.detail if probe else detail)
        elif probe is not None and probe.state == ProbeState.LOADING:
            live.set(State.LOADING, probe.detail)
        elif probe is None and live.state in (State.STARTING, State.LOADING):
            live.set(live.state, detail)

    async def _proves_ours(self, base_url: str, api_key: str | None) -> bool:
        """An engine is ours only if it holds our per-launch key: it answered our key (the
        probe), and it refuses a wrong one. A foreign engine that took the port (another
        installation's, or anything listening without a key) fails the second test."""
        if api_key is None:
            return True  # an engine without a key (adopted from before keys): nothing to prove
        assert self._http is not None
        try:
            resp = await self._http.get(f"{base_url}/v1/models", headers=auth_headers(secrets.token_hex(16)))
        except httpx.HTTPError:
            return False
        return resp.status_code in (401, 403)

    # ---- adoption ----------------------------------------------------------------------
    async def _adopt(self) -> None:
        snapshot = {e.model.id: e for e in await asyncio.to_thread(self._load)}
        kept: set[int] = set()
        for runtime in await asyncio.to_thread(self.adopters, self.installation_id):
            try:
                handles = await asyncio.to_thread(runtime.adopt)
            except Exception as exc:  # noqa: BLE001 - adoption never stops the daemon from starting
                log.warning("cannot adopt %s engines: %s", runtime.name, getattr(exc, "message", exc))
                continue
            for handle in handles:
                if handle.labels.get(INSTALLATION_LABEL) != self.installation_id:
                    continue  # another installation's engine (or one from before ids): never touched
                try:
                    if await self._adopt_one(runtime, handle, snapshot):
                        kept.add(handle.port)
                except Exception as exc:  # noqa: BLE001 - one bad engine must not stop the others
                    log.warning("cannot adopt %s engine %s: %s", runtime.name, handle.name, exc)
        assert self._ports is not None
        await asyncio.to_thread(self._ports.release_all_but, kept)

    async def _adopt_one(
        self, runtime: Runtime, handle: RunningEngine, snapshot: dict[int, models.ModelWithRecipe]
    ) -> bool:
        """Adopt one of our engines (True), or stop it when its model is gone or stopped."""
        try:
            key = (int(handle.labels["cortex.model-id"]), int(handle.labels["cortex.replica"]))
        except (KeyError, ValueError):
            return False
        entry = snapshot.get(key[0])
        if entry is None or entry.model.desired_state != DesiredState.RUNNING:
            log.info("stopping orphan engine %s (model gone or stopped)", handle.name)
            await asyncio.to_thread(runtime.stop, handle)
            return False
        live = LiveReplica(
            model_id=key[0],
            replica_index=key[1],
            engine=get_engine(entry.recipe.spec.engine),
            runtime=runtime,
            handle=handle,
            started_at=time.monotonic(),
        )
        live.set(State.LOADING, f"adopted {runtime.name} engine {handle.name}")
        self.live[key] = live
        assert self._ports is not None
        await asyncio.to_thread(self._ports.hold, handle.port, model_id=key[0], replica_index=key[1])
        log.info("adopted %s engine %s on port %s", runtime.name, handle.name, handle.port)
        return True

    def _installation_id(self) -> str:
        with self.session_factory() as session, session.begin():
            return ensure_installation(session).installation_id

    def _owned(self, spec: LaunchSpec) -> LaunchSpec:
        """The spec, labelled and named as this installation's: names never collide with another
        installation's on one host, and adoption recognises only its own."""
        return dataclasses.replace(
            spec,
            name=f"{spec.name}-{self.installation_id}",
            labels={**spec.labels, INSTALLATION_LABEL: self.installation_id},
        )

    def _record_crash(self, model_id: int, exit_code: int | None, diag: Diagnosis | None, logs: str) -> None:
        """Keep the crash in the DB until the model is next started by hand (see _clear_requests)."""
        sig = _exit_signal(exit_code)
        crash = {
            "at": utcnow().isoformat(),
            "exit_code": exit_code,
            "signal": signal.Signals(sig).name if sig else None,
            "rule": diag.rule if diag else "crashed",
            "summary": diag.summary if diag else f"The engine exited (code {exit_code}).",
            "fix": diag.fix if diag else "See the log lines below and `cortexctl model logs NAME`.",
            "log_lines": diag.log_lines if diag and diag.log_lines else logs.splitlines()[-10:],
        }
        with self.session_factory() as session, session.begin():
            session.execute(
                update(Model)
                .where(Model.id == model_id)
                .values(
                    crash_count=Model.crash_count + 1,
                    last_exit_code=exit_code,
                    last_exit_signal=sig,
                    last_crash=crash,
                )
            )

    # ---- DB and registry ---------------------------------------------------------------
    def _load(self) -> list[models.ModelWithRecipe]:
        with self.session_factory() as session:
            out = []
            for model in models.list_models(session):
                try:
                    out.append(models.load_with_recipe(session, model=model))
                except CortexError as exc:  # a stored recipe that no longer parses: report, skip
                    log.error("model %s: recipe unusable: %s", model.name, exc.message)
            return out

    def _persist(self, snapshot: list[models.ModelWithRecipe]) -> None:
        with self.session_factory() as session, session.begin():
            for entry in snapshot:
                model = entry.model
                lives = self._replicas_of(model.id)
                indices = {r.replica_index for r in lives}
                rows = {r.replica_index: r for r in models.replicas_of(session, model_id=model.id)}
                for live in lives:
                    row = rows.get(live.replica_index)
                    if row is None:
                        row = ModelReplica(model_id=model.id, replica_index=live.replica_index)
                        session.add(row)
                    self._write_replica(row, live)
                stale = [i for i in rows if i not in indices]
                if stale:
                    session.execute(
                        delete(ModelReplica).where(
                            ModelReplica.model_id == model.id, ModelReplica.replica_index.in_(stale)
                        )
                    )
                current = session.scalar(select(Model).where(Model.id == model.id))
                if current is None:
                    continue
                state = aggregate_state([r.state for r in lives], current.desired_state)
                failed = next((r for r in lives if r.state == State.FAILED), None)
                reason = (failed.reason if failed else None) or next(
                    (r.reason for r in lives if r.reason), None
                )
                values: dict[str, Any] = {}
                if state != current.state:
                    values.update(state=state, state_changed_at=utcnow())
                if reason and reason != current.state_reason:
                    values["state_reason"] = reason
                diagnosis = failed.diagnosis if failed else None
                if diagnosis != current.diagnosis and (failed or state == State.RUNNING):
                    values["diagnosis"] = diagnosis
                if values:
                    session.execute(update(Model).where(Model.id == model.id).values(**values))

    @staticmethod
    def _write_replica(row: ModelReplica, live: LiveReplica) -> None:
        if row.state != live.state:
            row.state, row.state_changed_at = live.state, utcnow()
        row.state_reason = live.reason
        row.runtime = live.runtime.name if live.runtime else row.runtime
        row.port = live.handle.port if live.handle else None
        row.pid = live.handle.pid if live.handle else None
        row.container_id = live.handle.container_id if live.handle else None
        row.restart_count = live.restart_count
        row.last_exit_code = live.last_exit_code
        row.diagnosis = live.diagnosis
        if live.state == State.STARTING and live.handle is not None and row.started_at is None:
            row.started_at = utcnow()

    def _publish(self, snapshot: list[models.ModelWithRecipe], followed: list[ServedModel]) -> None:
        served: dict[str, ServedModel] = {}
        for other in followed:  # models another daemon drives that this one can route to
            if other.served_name in served:
                served[other.served_name].replicas.extend(other.replicas)
            else:
                served[other.served_name] = other
        for entry in snapshot:
            spec = entry.recipe.spec
            lives = self._replicas_of(entry.model.id)
            state = aggregate_state([r.state for r in lives], entry.model.desired_state)
            sm = served.get(spec.served_name)
            if sm is None:
                sm = served[spec.served_name] = ServedModel(
                    served_name=spec.served_name,
                    engine=spec.engine,
                    state=state,
                    request_defaults=spec.request_defaults.as_body(),
                    request_timeout_s=spec.timeouts.request_s,
                    connect_timeout_s=spec.timeouts.connect_s,
                    created=int(entry.model.created_at.timestamp()),
                    recipe=entry.recipe.name,
                    serves_embeddings=spec.engine_args().serves_embeddings(),
                    embeddings_setting=type(spec.engine_args()).EMBEDDINGS_SETTING,
                    upstream_model=spec.engine_args().upstream_model(),
                )
            elif state == State.RUNNING:
                sm.state = State.RUNNING
            for live in lives:
                if live.handle is None:
                    continue
                sm.max_model_len = sm.max_model_len or live.max_model_len
                sm.replicas.append(
                    ReplicaEndpoint(
                        model_id=entry.model.id,
                        model_name=entry.model.name,
                        replica_index=live.replica_index,
                        base_url=live.handle.base_url,
                        healthy=live.state == State.RUNNING,
                        api_key=live.handle.api_key,
                    )
                )
        for name in [m.served_name for m in self.registry.all() if m.served_name not in served]:
            self.registry.remove(name)
        for sm in served.values():
            self.registry.put(sm)
        self.registry.loaded = True  # from now on an absent name really is unknown (404)

    def gpus_in_use(
        self, *, exclude_model: int, exclude_replica: int | None = None
    ) -> dict[int, list[GpuTenant]]:
        """GPU index → the replicas running on it (their claims), from the replicas that run here.

        `exclude_replica` given: only that replica of `exclude_model` is left out, so a model's
        own other replicas count as in use; without it, the whole model is left out."""
        used: dict[int, list[GpuTenant]] = {}
        for live in self.live.values():
            if live.model_id == exclude_model and exclude_replica in (None, live.replica_index):
                continue
            if live.handle is None or live.gpus == "none":
                continue
            indices = live.gpus if isinstance(live.gpus, tuple) else ()
            name = live.handle.labels.get("cortex.served-name", str(live.model_id))
            tenant = live.tenant or GpuTenant(name, None)
            for index in indices:
                used.setdefault(index, []).append(tenant)
        return used

    def _port_is_free(self, port: int) -> bool:
        return port_owner("127.0.0.1", port) is None


def _exit_signal(exit_code: int | None) -> int | None:
    """The signal that ended an engine: a child's negative code, or a container's 128+N."""
    if exit_code is None:
        return None
    n = -exit_code if exit_code < 0 else exit_code - 128 if 128 < exit_code < 160 else 0
    try:
        return int(signal.Signals(n)) if n else None
    except ValueError:
        return None
