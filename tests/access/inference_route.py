"""A test-only inference route (not in production code) that exercises `require_inference`
the way the gateway's /v1 routes do: admission, a body the route still parses, usage at the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from cortex_server.api.deps import InferenceDep, InferenceKeyDep

TEST_INFERENCE_PATH = "/test/inference"


def add_test_inference_route(app: FastAPI) -> None:
    @app.get("/test/models")
    async def test_models(principal: InferenceKeyDep) -> dict[str, Any]:
        return {"allowed": list(principal.allowed_models)}

    @app.post(TEST_INFERENCE_PATH)
    async def test_inference(body: dict[str, Any], grant: InferenceDep) -> dict[str, Any]:
        await asyncio.sleep(float(body.get("sleep_s", 0)))
        used = body.get("tokens_used")
        await grant.finish(tokens_used=int(used) if used is not None else None)
        return {
            "ok": True,
            "model": grant.model,
            "estimate": grant.tokens_estimate,
            "key": grant.principal.name,
        }
