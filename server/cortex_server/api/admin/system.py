"""/admin/system: this host, its GPUs and engines, Docker, bundles, versions (operators only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from cortex_server.api.deps import ContextDep, OperatorPrincipal
from cortex_server.services.system import system_report

router = APIRouter(prefix="/admin/system", tags=["admin: system"])


@router.get("")
async def system_info(_: OperatorPrincipal, ctx: ContextDep) -> dict[str, Any]:
    return await run_in_threadpool(system_report, ctx)
