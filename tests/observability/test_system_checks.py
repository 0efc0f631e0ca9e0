"""/admin/system carries doctor's read-only checks, each OK / WARN / FAIL with its fix, for the
console's System page (the same code as `cortexctl doctor`)."""

from __future__ import annotations

from pathlib import Path

from tests.access.conftest import make_env
from tests.conftest import free_port


def test_system_report_lists_the_health_checks_with_fixes(cortex_home: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    for env in make_env(cortex_home, redis_url=closed, ratelimit_fail_mode="open"):
        report = env.admin("GET", "/admin/system")
        checks = {c["name"]: c for c in report["checks"]}
        assert {"python", "disk", "database", "redis", "docker", "gpus"} <= set(checks)
        assert checks["database"]["status"] == "OK"
        assert checks["redis"]["status"] == "FAIL" and checks["redis"]["fix"], checks["redis"]
        assert all(c["status"] in ("OK", "WARN", "FAIL") for c in checks.values())
        assert all(c["fix"] for c in checks.values() if c["status"] != "OK")
