"""Host checks for `cortexctl doctor`: each one OK / WARN / FAIL with a fix."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cortexctl.core.daemon import port_owner, read_pid
from cortexctl.core.settings import Settings, redact_url

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def check_python() -> Check:
    # pip refuses to install CORTEX below 3.11 (requires-python), so this reports, not gates.
    return Check("python", OK, f"Python {'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})")


def check_disk(settings: Settings) -> Check:
    path = settings.home if settings.home.exists() else Path(settings.home).parent
    while not path.exists():
        path = path.parent
    free_gib = shutil.disk_usage(path).free / 2**30
    detail = f"{free_gib:.1f} GiB free at {path}"
    if free_gib < 1:
        return Check("disk", FAIL, detail, "Free disk space or point CORTEX_HOME at a larger disk.")
    if free_gib < 20:
        return Check(
            "disk", WARN, detail, "Model weights need tens of GiB; free space before importing models."
        )
    return Check("disk", OK, detail)


def check_port(settings: Settings) -> Check:
    owner = port_owner(settings.host, settings.port)
    where = f"{settings.host}:{settings.port}"
    if owner is None:
        return Check("port", OK, f"{where} is free")
    if read_pid(settings) is not None:
        return Check("port", OK, f"{where} is served by the running CORTEX daemon")
    return Check(
        "port", FAIL, f"{where} is in use by {owner}", "Stop that process or set CORTEX_PORT to a free port."
    )


def check_docker() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=3)
        version = client.version().get("Version", "?")
        client.close()
        return Check("docker", OK, f"Docker Engine {version} reachable")
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return Check(
            "docker",
            WARN,
            f"Docker Engine not reachable ({reason})",
            "Models will run as processes; start dockerd to use the docker runtime.",
        )


def check_gpus() -> Check:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library, no GPU: all mean "none"
        return Check("gpus", WARN, "none (no NVIDIA driver found)", "CPU-only: use llama.cpp CPU recipes.")
    try:
        count = pynvml.nvmlDeviceGetCount()
        names = []
        for i in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            names.append(f"{i}: {name} {mem.total / 2**30:.0f} GiB")
        driver = pynvml.nvmlSystemGetDriverVersion()
    finally:
        pynvml.nvmlShutdown()
    if not names:
        return Check("gpus", WARN, "none", "CPU-only: use llama.cpp CPU recipes.")
    return Check("gpus", OK, f"driver {driver}; " + "; ".join(names))


def check_database(settings: Settings) -> Check:
    from cortex_server.db.engine import check_connection, make_engine
    from cortexctl.core.errors import CortexError

    url = redact_url(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    try:
        check_connection(engine)
        return Check("database", OK, f"{settings.database_kind} reachable ({url})")
    except CortexError as exc:
        return Check("database", FAIL, exc.message, exc.fix)
    finally:
        engine.dispose()


def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", OK, "not configured (in-process rate limits)")
    import redis

    url = redact_url(settings.redis_url)
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
        return Check("redis", OK, f"reachable ({url})")
    except redis.RedisError as exc:
        return Check("redis", FAIL, f"cannot reach {url}: {exc}", "Start Redis or fix CORTEX_REDIS_URL.")


def check_bundle_staging(settings: Settings) -> Check:
    """An interrupted bundle import is finished or rolled back, and its staging removed, here too."""
    from cortexctl.bundles.install import tidy_imports
    from cortexctl.core.errors import CortexError
    from cortexctl.engines.cache import default_cache_root

    try:
        done = tidy_imports(settings, engine_cache_dir=default_cache_root())
    except CortexError as exc:  # another import holds the lock, or the ledger is unreadable
        return Check("bundle staging", WARN, exc.message, exc.fix)
    except OSError as exc:
        return Check("bundle staging", WARN, f"cannot tidy bundle staging: {exc}", "Check permissions.")
    if not done:
        return Check("bundle staging", OK, "no interrupted import, no stale staging")
    return Check("bundle staging", OK, "; ".join(done))


def daemon_checks(settings: Settings) -> list[Check]:
    """What the daemon reports on /admin/system (and the console's System page): doctor's checks
    that only read. The port is the daemon's own and bundle staging is tidied by imports and
    `cortexctl doctor`, so neither is run from a request."""
    return [
        check_python(),
        check_disk(settings),
        check_database(settings),
        check_redis(settings),
        check_docker(),
        check_gpus(),
    ]


def run_checks(settings: Settings, extra: list[Callable[[Settings], Check]] | None = None) -> list[Check]:
    checks = [
        check_python(),
        check_disk(settings),
        check_port(settings),
        check_database(settings),
        check_redis(settings),
        check_docker(),
        check_gpus(),
        check_bundle_staging(settings),
    ]
    checks += [fn(settings) for fn in extra or []]
    return checks
