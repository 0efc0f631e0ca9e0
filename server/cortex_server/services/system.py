"""What /admin/system reports: this host, its GPUs and what runs on each, Docker, bundles, versions.

Operator-only (it reveals the host). Blocking (psutil, NVML, the Docker socket): call it
from a worker thread. Each part fails soft: a part that cannot be read says why
instead of failing the whole report.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import psutil

from cortex_server import __version__
from cortex_server.services.observability.collectors import engine_pids, owner_of
from cortex_server.services.observability.host import as_dict, disks, host_info
from cortexctl.bundles.ledger import Ledger
from cortexctl.core.doctor import daemon_checks
from cortexctl.core.errors import CortexError
from cortexctl.engines.registry import engine_names, get_engine

if TYPE_CHECKING:
    from cortex_server.context import AppContext


def system_report(ctx: AppContext) -> dict[str, Any]:
    settings = ctx.settings
    owners = engine_pids(ctx)
    gpus = []
    nvml = ctx.observability.nvml if ctx.observability is not None else None
    for gpu in nvml.gpus() if nvml is not None else []:
        entry = as_dict(gpu)
        for proc in entry["processes"]:
            owner = owner_of(proc["pid"], owners)
            proc["model"], proc["replica"] = owner if owner else (None, None)
        gpus.append(entry)
    return {
        "version": __version__,
        "pid": os.getpid(),
        "worker": None if ctx.worker is None else {"index": ctx.worker.index, "count": ctx.worker.count},
        "supervising": ctx.supervisor is not None,
        "url": settings.url,
        "home": str(settings.home),
        "database": settings.database_kind,
        "redis": settings.redis_url is not None,
        "uptime_s": round(time.time() - ctx.started_at, 1),
        "checks": [dataclasses.asdict(check) for check in daemon_checks(settings)],
        "hosts": [host_info()],
        "disks": [as_dict(d) for d in disks({"home": settings.home, "models": settings.models_dir})],
        "gpus": gpus,
        "replicas": replicas(ctx, owners),
        "docker": docker_info(),
        "bundles": bundles(ctx),
        "versions": {
            "cortex": __version__,
            "python": sys.version.split()[0],
            # "llama_cpp" is this report's historical key for the llamacpp engine's pin
            **{("llama_cpp" if n == "llamacpp" else n): get_engine(n).version for n in engine_names()},
        },
    }


def replicas(ctx: AppContext, owners: dict[int, tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Every replica the gateway knows: health, requests in flight, and the engine process's CPU/RSS."""
    owners = engine_pids(ctx) if owners is None else owners
    pid_of = {replica: pid for pid, (_, replica) in owners.items()}
    out = []
    for served in ctx.registry.all():
        for r in served.replicas:
            entry: dict[str, Any] = {
                "model": served.served_name,
                "replica": r.key,
                "state": served.state,
                "healthy": r.healthy,
                "in_flight": r.outstanding,
                "pid": pid_of.get(r.key),
                "cpu_percent": None,
                "rss_bytes": None,
            }
            pid = entry["pid"]
            if pid:
                try:
                    proc = psutil.Process(pid)
                    entry["cpu_percent"] = proc.cpu_percent(interval=0.05)
                    entry["rss_bytes"] = proc.memory_info().rss
                except psutil.Error:
                    pass
            out.append(entry)
    return out


def docker_info() -> dict[str, Any]:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            version = client.version()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - no daemon, no socket, no permission: all "unavailable"
        return {"available": False, "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"available": True, "version": version.get("Version"), "api_version": version.get("ApiVersion")}


def bundles(ctx: AppContext) -> list[dict[str, Any]] | dict[str, str]:
    try:
        entries = Ledger(ctx.settings.home).entries()
    except CortexError as exc:
        return {"error": exc.message}
    return [
        {
            "name": e.name,
            "bundle_id": e.bundle_id,
            "imported_at": e.imported_at.isoformat(),
            "signature": e.signature,
            "items": len(e.items),
        }
        for e in entries
    ]
