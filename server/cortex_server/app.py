"""The app factory. Resources live in the lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cortex_server import __version__
from cortex_server.api import health
from cortex_server.api.admin import keys as admin_keys
from cortex_server.api.admin import recipes as admin_recipes
from cortex_server.api.admin import system as admin_system
from cortex_server.context import AppContext
from cortex_server.core.auth import KeyAuthenticator
from cortex_server.core.errors import install_error_handlers
from cortex_server.core.security import load_or_create_secret
from cortex_server.db.engine import make_engine, make_session_factory
from cortexctl.core.settings import Settings


def build_context(settings: Settings) -> AppContext:
    engine = make_engine(settings.effective_database_url)
    session_factory = make_session_factory(engine)
    secret = load_or_create_secret(settings)
    return AppContext(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        secret=secret,
        authenticator=KeyAuthenticator(session_factory=session_factory, secret=secret),
    )


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = build_context(settings)
        app.state.cortex = ctx
        try:
            yield
        finally:
            ctx.engine.dispose()

    app = FastAPI(title="CORTEX", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_system.router)
    app.include_router(admin_recipes.router)
    return app
