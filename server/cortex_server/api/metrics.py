"""GET /metrics: the Prometheus text exposition of this daemon.

Access (`metrics_access`): "loopback" (default) admits clients on the loopback
address without credentials (the address after `trusted_proxies`) and asks others
for a key or session with the `metrics:read` scope; "scope" always asks; "open"
never does. `metrics_listen` serves the same text on a separate address.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from cortex_server.api.deps import _declare, authenticate, context_of, request_ip
from cortexctl.core.errors import NotFound, PermissionDenied

router = APIRouter(tags=["metrics"])

SCOPE = "metrics:read"


def _is_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


async def _metrics_access(request: Request) -> None:
    settings = context_of(request).settings
    if not settings.metrics_enabled:
        raise NotFound("Metrics are turned off on this daemon.", fix="Set metrics_enabled: true.")
    if settings.metrics_access == "open":
        return
    if settings.metrics_access == "loopback" and _is_loopback(request_ip(request)):
        return
    principal = await authenticate(request)
    if not principal.has_scope(SCOPE):
        raise PermissionDenied(
            f"This {principal.kind} lacks the '{SCOPE}' scope.",
            fix="Use a key with the metrics:read scope, or scrape from the daemon's host (loopback).",
        )


# Declared for tests/access/test_every_route.py as the default ("loopback") mode seen from the
# loopback address its test client uses: no credentials needed there.
metrics_access = _declare(_metrics_access, public=True, loopback_only=True)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, _: Annotated[None, Depends(metrics_access)]) -> Response:
    obs = context_of(request).observability
    assert obs is not None
    body = await run_in_threadpool(obs.render)  # collectors read the DB, psutil and NVML
    return Response(body, media_type=CONTENT_TYPE_LATEST)
