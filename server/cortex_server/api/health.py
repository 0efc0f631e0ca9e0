"""Liveness and readiness. No credentials: load balancers and `cortexctl up` call these."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cortex_server import __version__
from cortex_server.api.deps import ContextDep, public_route
from cortex_server.db.engine import check_connection
from cortex_server.db.schema_version import is_current
from cortexctl.core.errors import CortexError

router = APIRouter(tags=["health"], dependencies=[Depends(public_route)])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready")
async def ready(ctx: ContextDep) -> JSONResponse:
    body: dict[str, object] = {"version": __version__, "database": ctx.settings.database_kind}
    try:
        await run_in_threadpool(check_connection, ctx.engine)
        current = await run_in_threadpool(is_current, ctx.engine)
    except CortexError as exc:
        return JSONResponse({**body, "status": "unavailable", "reason": exc.message}, status_code=503)
    if not current:
        return JSONResponse(
            {**body, "status": "unavailable", "reason": "migrations pending"}, status_code=503
        )
    if (journal_error := ctx.usage_writer.journal.error) is not None:
        # usage records cannot be made durable: say so to the load balancer and the operator
        return JSONResponse(
            {**body, "status": "unavailable", "reason": f"usage journal not writable: {journal_error}"},
            status_code=503,
        )
    if ctx.settings.redis_url and not await ctx.rate_limiter.ready():
        # limited keys are refused (or unlimited, if fail-open) while Redis is down: not ready
        return JSONResponse({**body, "status": "unavailable", "reason": "redis unreachable"}, status_code=503)
    if not ctx.registry.loaded:  # requests would get 503 models_loading, not a false 404
        return JSONResponse({**body, "status": "unavailable", "reason": "models loading"}, status_code=503)
    return JSONResponse({**body, "status": "ready", "migrations": "current"})
