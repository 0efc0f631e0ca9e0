"""The app factory. Resources live in the lifespan, never at import time."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from cortex_server import __version__
from cortex_server.api import auth, health
from cortex_server.api import metrics as metrics_api
from cortex_server.api import openai as openai_api
from cortex_server.api.admin import keys as admin_keys
from cortex_server.api.admin import models as admin_models
from cortex_server.api.admin import orgs as admin_orgs
from cortex_server.api.admin import recipes as admin_recipes
from cortex_server.api.admin import system as admin_system
from cortex_server.api.admin import usage as admin_usage
from cortex_server.api.admin import users as admin_users
from cortex_server.api.chat.router import router as chat_router
from cortex_server.api.console import mount_console
from cortex_server.api.middleware.body_limit import BodyLimitMiddleware, BodyLimits
from cortex_server.api.middleware.header_limit import HeaderLimitMiddleware, HeaderLimits
from cortex_server.api.openai.fastpath import InferenceFastPath
from cortex_server.context import AppContext
from cortex_server.core.auth import KeyAuthenticator
from cortex_server.core.errors import install_error_handlers
from cortex_server.core.security import HASH_SLOTS, load_or_create_secret
from cortex_server.core.sessions import SessionCodec
from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.services.gateway import registry_mirror
from cortex_server.services.gateway.admission import Admission
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.proxy import Gateway
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.invalidation import AuthInvalidator
from cortex_server.services.last_used import run_last_used_writer
from cortex_server.services.login_throttle import LoginGate, LoginThrottle, RedisFailures
from cortex_server.services.metering.journal import UsageJournal
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.metering.writer import UsageWriter
from cortex_server.services.observability.daemon import build_observability, count_rejections, install
from cortex_server.services.observability.gateway import observing_sink
from cortex_server.services.observability.rejections import RejectionRecorder
from cortex_server.services.ratelimit import make_rate_limiter
from cortex_server.services.registry import ModelRegistry
from cortex_server.services.worker_peers import WorkerPeers
from cortexctl.core.logrotate import rotate_forever
from cortexctl.core.settings import Settings
from cortexctl.runtimes.base import (
    MANAGED_LABEL,
    Runtime,
    choose_runtime,
    docker_endpoint_present,
    docker_runs_containers,
    make_runtime,
)

if TYPE_CHECKING:
    from cortex_server.services.supervisor import Supervisor
    from cortex_server.workers import WorkerRole

log = logging.getLogger(__name__)


def build_context(settings: Settings, *, worker: WorkerRole | None = None) -> AppContext:
    engine = make_engine(settings.effective_database_url)
    session_factory = make_session_factory(engine)
    secret = load_or_create_secret(settings)
    authenticator = KeyAuthenticator(
        session_factory=session_factory,
        secret=secret,
        session_idle_s=settings.session_idle_s,
        stale_max_s=settings.auth_stale_max_s,
    )
    registry = ModelRegistry(loaded=not settings.supervise and worker is None)  # else: once filled
    upstreams = UpstreamClients(
        max_connections=settings.upstream_max_connections,
        stream_buffer_max_bytes=settings.stream_buffer_max_bytes,
    )
    usage_writer = UsageWriter(
        engine=engine,
        spool=UsageSpool(_spool_file(settings, worker)),
        journal=UsageJournal(
            _journal_dir(settings, worker),
            max_bytes=settings.usage_journal_max_bytes,
            fsync=settings.usage_journal_fsync,
        ),
        flush_interval_s=settings.usage_flush_interval_s,
        batch_max=settings.usage_batch_max,
        refuse_when_not_durable=settings.usage_journal_full_policy == "refuse",
    )
    observability = build_observability(settings)
    balancer = ReplicaBalancer(
        policy=settings.routing_policy,
        failure_threshold=settings.circuit_breaker_failures,
        cooldown_s=settings.circuit_breaker_cooldown_s,
        metrics=observability.gateway,
    )
    rate_limiter = make_rate_limiter(
        redis_url=settings.redis_url,
        prefix=settings.redis_key_prefix,
        fail_mode=settings.ratelimit_fail_mode,
        lease_s=settings.ratelimit_lease_s,
    )
    return AppContext(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        secret=secret,
        authenticator=authenticator,
        registry=registry,
        upstreams=upstreams,
        usage_writer=usage_writer,
        gateway=Gateway(
            registry=registry,
            clients=upstreams,
            balancer=balancer,
            usage=observing_sink(observability.gateway, usage_writer.submit),
            usage_gate=usage_writer,
            metrics=observability.gateway,
            stream_send_timeout_s=settings.stream_send_timeout_s,
        ),
        sessions=SessionCodec(secret=secret, max_age_s=settings.session_ttl_s),
        login_throttle=LoginThrottle(
            store=RedisFailures(url=settings.redis_url, prefix=settings.redis_key_prefix)
            if settings.redis_url
            else None,
            free=settings.login_free_failures,
            free_ip=settings.login_free_failures_per_ip,
            max_s=settings.login_max_backoff_s,
        ),
        login_gate=LoginGate(slots=HASH_SLOTS),
        rate_limiter=rate_limiter,
        admission=Admission(
            authenticator=authenticator,
            rate_limiter=rate_limiter,
            registry=registry,
            engine=engine,
            trusted_proxies=settings.trusted_proxies,
        ),
        invalidator=AuthInvalidator(
            authenticator=authenticator,
            redis_url=settings.redis_url,
            prefix=settings.redis_key_prefix,
            peers=_worker_peers(settings, worker),
        ),
        observability=observability,
        rejections=RejectionRecorder(engine=engine),
    )


def build_supervisor(ctx: AppContext) -> Supervisor:
    # imported here: the supervisor brings validation and the process runtime, which the gateway
    # workers that do not supervise never need
    from cortex_server.services.supervisor import INSTALLATION_LABEL, Supervisor

    settings = ctx.settings

    def adopters(installation_id: str) -> list[Runtime]:
        found = [make_runtime("process", settings)]
        # the docker SDK (~5 MiB: requests, urllib3) only where a container of this installation
        # runs, to adopt; engines started later load it through choose_runtime when they need it
        ours = {MANAGED_LABEL: "true", INSTALLATION_LABEL: installation_id}
        if docker_endpoint_present() and docker_runs_containers(ours):
            from cortexctl.runtimes.docker import DockerRuntime

            docker = DockerRuntime(settings=settings)
            if docker.available():
                found.append(docker)
        return found

    return Supervisor(
        settings=settings,
        session_factory=ctx.session_factory,
        registry=ctx.registry,
        choose_runtime=lambda recipe: choose_runtime(settings, recipe),
        adopters=adopters,
        interval_s=settings.health_poll_interval_s,
        prune_upstreams=ctx.upstreams.prune,
        engine_metrics=ctx.observability.engines if ctx.observability is not None else None,
    )


def _no_native_telemetry() -> dict[str, Any]:
    """FastAPI >= 0.16x asks the OpenTelemetry providers on every request whether to trace it
    (measured: ~5% of the gateway's CPU per request). The appliance's metrics are Prometheus
    (/metrics); nothing here exports OpenTelemetry, so it is switched off where it exists."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def _worker_peers(settings: Settings, worker: WorkerRole | None) -> WorkerPeers | None:
    """The channel to this daemon's other workers (none for a lone daemon)."""
    if worker is None or worker.count < 2:
        return None
    try:
        return WorkerPeers(settings.home, index=worker.index, count=worker.count)
    except OSError as exc:  # the name is taken: a previous worker of this home is still exiting
        log.warning("no direct channel to the other workers (%s); revocations reach them by TTL", exc)
        return None


def _spool_file(settings: Settings, worker: WorkerRole | None) -> Path:
    """Each worker process spools to a file of its own (worker 0 and a lone daemon: the usual one)."""
    path = settings.usage_spool_file
    return path if worker is None or worker.index == 0 else path.with_name(f"usage.w{worker.index}.jsonl")


def _journal_dir(settings: Settings, worker: WorkerRole | None) -> Path:
    """Each worker process journals into a folder of its own."""
    path = settings.usage_journal_dir
    return path if worker is None or worker.index == 0 else path.with_name(f"journal.w{worker.index}")


def create_app(settings: Settings, *, worker: WorkerRole | None = None) -> FastAPI:
    """`worker`: this process is one of `cortexctl serve --workers N` (see workers.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = build_context(settings, worker=worker)
        ctx.worker = worker
        app.state.cortex = ctx
        background = [
            asyncio.create_task(ctx.invalidator.listen(), name="auth-invalidation"),
            asyncio.create_task(
                run_last_used_writer(authenticator=ctx.authenticator, session_factory=ctx.session_factory),
                name="key-last-used",
            ),
        ]
        if worker is not None:  # share the routing registry: the supervising worker writes it
            share = registry_mirror.publish if worker.supervises else registry_mirror.follow
            path = settings.run_dir / "registry.json"
            background.append(asyncio.create_task(share(ctx.registry, path), name="registry-mirror"))
        ctx.usage_writer.start()
        if ctx.observability is not None:
            install(ctx.observability, ctx)
            if ctx.observability.workers is not None:  # the other workers fetch our series
                background.append(
                    asyncio.create_task(ctx.observability.workers.serve(), name="worker-metrics")
                )
        if ctx.rejections is not None:
            ctx.rejections.start()
        if settings.supervise:
            ctx.supervisor = build_supervisor(ctx)
            await ctx.supervisor.start()
            # size caps on cortexd.out and the engines' logs: one process per home rotates them
            background.append(asyncio.create_task(rotate_forever(settings), name="log-rotation"))
        try:
            yield
        finally:
            if ctx.supervisor is not None:
                await ctx.supervisor.close()  # engines keep running; the next daemon adopts them
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            try:
                await ctx.upstreams.aclose()
                await ctx.usage_writer.aclose()  # flush: to the DB, else to the spool
                if ctx.rejections is not None:
                    await ctx.rejections.aclose()
                if ctx.observability is not None:
                    ctx.observability.close()
                await ctx.rate_limiter.close()
                await ctx.login_throttle.close()
                ctx.invalidator.close()
            finally:
                ctx.engine.dispose()

    # /docs and /redoc come from the package (api/console.py), never from a CDN
    app = FastAPI(
        title="CORTEX",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        **_no_native_telemetry(),
    )
    install_error_handlers(app)
    count_rejections(app)
    # added last runs first: the fast path applies the same limits (the same objects) to its routes
    header_limits = HeaderLimits(max_bytes=settings.max_header_bytes, max_count=settings.max_header_count)
    body_limits = BodyLimits(
        max_bytes=settings.max_request_body_bytes, read_timeout_s=settings.body_read_timeout_s
    )
    app.add_middleware(BodyLimitMiddleware, limits=body_limits)
    app.add_middleware(HeaderLimitMiddleware, limits=header_limits)
    app.add_middleware(
        InferenceFastPath,
        routes=openai_api.INFERENCE_ROUTES,
        header_limits=header_limits,
        body_limits=body_limits,
    )
    app.include_router(openai_api.router)  # first: routes match in order, and these are the hot path
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(auth.router)
    app.include_router(admin_orgs.router)
    app.include_router(admin_users.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_usage.router)
    app.include_router(admin_system.router)
    app.include_router(admin_models.router)
    app.include_router(admin_recipes.router)
    app.include_router(chat_router)
    mount_console(app)  # last: console pages never shadow an API path
    return app
