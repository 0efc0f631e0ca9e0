"""Run the daemon in the foreground: migrate, bootstrap, serve (what systemd runs)."""

from __future__ import annotations

import logging
import os
from typing import Any

from cortex_server.core.logging import configure_logging
from cortex_server.core.security import secure_home
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings, *, workers: int | None = None) -> None:
    """`workers`: gateway processes on the one port (None: workers.default_workers)."""
    from cortex_server.workers import check_workers, default_workers, serve_workers, without_unused_modules

    without_unused_modules()  # one worker serves from this very process
    count = default_workers(settings) if workers is None else workers
    check_workers(settings, count)
    os.umask(0o077)  # for the daemon's lifetime: logs, db, spool are created private
    secure_home(settings.home)
    configure_logging(
        level=settings.log_level,
        logs_dir=settings.logs_dir,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
    )
    prepare_database(settings, shows_password=False)  # once, before any worker starts
    if count > 1:
        serve_workers(settings, count)
        return
    # imported here: under --workers the parent only starts processes and needs none of the app
    import uvicorn

    from cortex_server.app import create_app

    log.info("cortexd listening on %s", settings.url)
    uvicorn.run(create_app(settings), **server_options(settings))


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for the daemon (bench/ runs the daemon with the same ones)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,  # X-Forwarded-* is judged by our trusted_proxies setting, not uvicorn
        "server_header": False,  # one header less per response, and no version advertised
        "timeout_graceful_shutdown": 10,
        "h11_max_incomplete_event_size": settings.max_header_bytes,  # the h11 parser's own head cap
    }
