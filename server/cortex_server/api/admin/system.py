"""/admin/system: what this daemon is and where its data lives (host paths: operators only)."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter

from cortex_server import __version__
from cortex_server.api.deps import ContextDep, OperatorPrincipal

router = APIRouter(prefix="/admin/system", tags=["admin: system"])


@router.get("")
def system_info(_: OperatorPrincipal, ctx: ContextDep) -> dict[str, object]:
    return {
        "version": __version__,
        "pid": os.getpid(),
        "url": ctx.settings.url,
        "home": str(ctx.settings.home),
        "database": ctx.settings.database_kind,
        "redis": ctx.settings.redis_url is not None,
        "uptime_s": round(time.time() - ctx.started_at, 1),
    }
