"""Wiring: one registry per daemon, its collectors, the rejection hook, the optional listener.

`create_app` calls `build_observability(settings)` (nothing registered globally),
`install(app, ctx)` once the context exists, and `render()` serves the text
exposition. The process-wide default registry (process CPU/RSS/fds, the rate
limiter's backend-error counter) is folded into the daemon's output.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request

from cortex_server.services.observability.collectors import (
    AuthCollector,
    HostCollector,
    MeteringCollector,
    ModelCollector,
    engine_pids,
)
from cortex_server.services.observability.engines import EngineMetricsStore
from cortex_server.services.observability.gateway import GatewayMetrics
from cortex_server.services.observability.host import Nvml
from cortex_server.services.observability.workers import WorkerMetrics
from cortexctl.core.errors import CortexError
from cortexctl.core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cortex_server.context import AppContext

log = logging.getLogger(__name__)

REJECTED = (401, 403, 429)


class _ProcessDefaults(Collector):
    """The default registry's collectors (process_*, python_*, module-level counters)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


@dataclass
class Observability:
    registry: CollectorRegistry
    gateway: GatewayMetrics | None  # None when metrics are off: the hot path does nothing
    engines: EngineMetricsStore
    nvml: Nvml = field(default_factory=Nvml)
    listener: Any = None  # (server, thread) of the separate /metrics listener, if any
    workers: WorkerMetrics | None = None  # under `serve --workers N`: every worker's series

    def render(self) -> bytes:
        return self.workers.render() if self.workers is not None else self.render_own()

    def render_own(self) -> bytes:
        """This process's series only."""
        return generate_latest(self.registry)

    def close(self) -> None:
        if self.listener is not None:
            server, thread = self.listener
            server.shutdown()
            server.server_close()
            thread.join(5)
            self.listener = None


def build_observability(settings: Settings) -> Observability:
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client.utils is unannotated; process-wide: no *_created series (they double the output)
    registry = CollectorRegistry()
    enabled = settings.metrics_enabled
    return Observability(
        registry=registry,
        gateway=GatewayMetrics(registry) if enabled else None,
        engines=EngineMetricsStore(interval_s=settings.engine_metrics_interval_s if enabled else 0.0),
    )


def install(obs: Observability, ctx: AppContext) -> None:
    """Register the scrape-time collectors; start the separate listener if configured."""
    settings = ctx.settings
    obs.registry.register(ModelCollector(ctx))
    obs.registry.register(MeteringCollector(ctx))
    obs.registry.register(AuthCollector(ctx))
    obs.registry.register(
        HostCollector(
            disk_paths={"home": settings.home, "models": settings.models_dir},
            nvml=obs.nvml,
            engine_pids=lambda: engine_pids(ctx),
        )
    )
    obs.registry.register(_EngineCollector(obs.engines))
    obs.registry.register(_ProcessDefaults())
    worker = ctx.worker
    if settings.metrics_enabled and worker is not None and worker.count > 1:
        obs.workers = WorkerMetrics(
            settings.home, index=worker.index, count=worker.count, render_own=obs.render_own
        )
    if settings.metrics_enabled and settings.metrics_listen and (worker is None or worker.supervises):
        from prometheus_client import start_http_server

        host, _, port = settings.metrics_listen.rpartition(":")
        served = obs.workers.merged if obs.workers is not None else obs.registry
        obs.listener = start_http_server(int(port), addr=host.strip("[]"), registry=served)
        log.info("serving /metrics on %s", settings.metrics_listen)


class _EngineCollector(Collector):
    def __init__(self, store: EngineMetricsStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        return self.store.collect()


def count_rejections(app: FastAPI) -> None:
    """Wrap the CortexError handler: 401/403/429 are counted (metrics) and recorded (DB counts)."""
    inner = app.exception_handlers[CortexError]

    async def handler(request: Request, exc: Exception) -> Any:
        if isinstance(exc, CortexError) and exc.status_code in REJECTED:
            try:
                _record(request, exc)
            except Exception:  # noqa: BLE001 - counting must never change the answer
                log.exception("recording a rejection failed")
        answer = inner(request, exc)
        return await answer if inspect.isawaitable(answer) else answer  # Starlette allows sync handlers

    app.exception_handlers[CortexError] = handler


def _record(request: Request, exc: CortexError) -> None:
    ctx: AppContext | None = getattr(request.app.state, "cortex", None)
    if ctx is None:
        return
    obs = ctx.observability
    if obs is not None and obs.gateway is not None:
        obs.gateway.rejected(exc.status_code, exc.code, limit_kind=exc.details.get("limit"))
    if ctx.rejections is None:
        return
    principal = None
    if exc.status_code != 401:  # a 403/429 comes after authentication: the key is in the cache
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            _, principal = ctx.authenticator.cached(token.strip())
    ctx.rejections.record(
        path=request.url.path,
        status_code=exc.status_code,
        reason=exc.code,
        org_id=principal.org_id if principal else None,
        api_key_id=principal.key_id if principal else None,
        user_id=principal.user_id if principal else None,
    )
