"""A real daemon process for multi-daemon tests: the production app plus the test-only
inference route, logging at debug level so the log-grep test sees everything it can.

    python -m uvicorn tests.access.daemon_app:create --factory --port N --no-proxy-headers
"""

from __future__ import annotations

from fastapi import FastAPI

from cortex_server.app import create_app
from cortex_server.core.logging import configure_logging
from cortexctl.core.settings import load_settings
from tests.access.inference_route import add_test_inference_route, add_test_stream_route


def create() -> FastAPI:
    settings = load_settings()  # an entrypoint: settings come from the CORTEX_* environment
    configure_logging(level="debug", logs_dir=settings.logs_dir)
    app = create_app(settings)
    add_test_inference_route(app)
    add_test_stream_route(app)
    return app
