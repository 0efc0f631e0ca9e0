"""The app factory. Resources live in the lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cortex_server import __version__
from cortex_server.api import health
from cortex_server.api import openai as openai_api
from cortex_server.api.admin import keys as admin_keys
from cortex_server.api.admin import system as admin_system
from cortex_server.api.middleware.body_limit import BodyLimitMiddleware
from cortex_server.context import AppContext
from cortex_server.core.auth import KeyAuthenticator
from cortex_server.core.errors import install_error_handlers
from cortex_server.core.security import load_or_create_secret
from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.proxy import Gateway
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.metering.spool import UsageSpool
from cortex_server.services.metering.writer import UsageWriter
from cortex_server.services.registry import ModelRegistry
from cortexctl.core.settings import Settings


def build_context(settings: Settings) -> AppContext:
    engine = make_engine(settings.effective_database_url)
    session_factory = make_session_factory(engine)
    secret = load_or_create_secret(settings)
    registry = ModelRegistry()
    upstreams = UpstreamClients(max_connections=settings.upstream_max_connections)
    usage_writer = UsageWriter(
        engine=engine,
        spool=UsageSpool(settings.usage_spool_file),
        flush_interval_s=settings.usage_flush_interval_s,
        batch_max=settings.usage_batch_max,
    )
    balancer = ReplicaBalancer(
        policy=settings.routing_policy,
        failure_threshold=settings.circuit_breaker_failures,
        cooldown_s=settings.circuit_breaker_cooldown_s,
    )
    return AppContext(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        secret=secret,
        authenticator=KeyAuthenticator(session_factory=session_factory, secret=secret),
        registry=registry,
        upstreams=upstreams,
        usage_writer=usage_writer,
        gateway=Gateway(registry=registry, clients=upstreams, balancer=balancer, usage=usage_writer.submit),
    )


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = build_context(settings)
        app.state.cortex = ctx
        ctx.usage_writer.start()
        try:
            yield
        finally:
            try:
                await ctx.upstreams.aclose()
                await ctx.usage_writer.aclose()  # flush: to the DB, else to the spool
            finally:
                ctx.engine.dispose()

    app = FastAPI(title="CORTEX", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.include_router(openai_api.router)  # first: routes match in order, and these are the hot path
    app.include_router(health.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_system.router)
    return app
