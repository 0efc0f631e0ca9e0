"""Run the daemon in the foreground: migrate, bootstrap, serve (what systemd runs)."""

from __future__ import annotations

import logging

import uvicorn

from cortex_server.app import create_app
from cortex_server.core.logging import configure_logging
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    configure_logging(level=settings.log_level, logs_dir=settings.logs_dir)
    prepare_database(settings)
    log.info("cortexd listening on %s", settings.url)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-* is judged by our trusted_proxies setting, not uvicorn
        timeout_graceful_shutdown=10,
    )
