"""`cortexctl service install` and `up/down/status` driving the installed unit.

The unit file is checked by the real `systemd-analyze verify`. This host's PID 1 is not
systemd, so `systemctl` is SystemctlTestDouble (tests/doubles/systemctl_test_double.py):
it starts ExecStart as the unit's User= with its Environment=, which is what these tests
need to see (the right user, the right home, the real daemon answering).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.engine_fixtures import free_tcp_port

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "systemctl_test_double.py"
CORTEXCTL = Path(sys.executable).parent / "cortexctl"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing a service user needs root")


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [*path.parents, path])


class Service:
    def __init__(self, root: Path, user: str) -> None:
        self.root, self.user = root, user
        self.unit = root / f"cortex-test-{root.name.rsplit('-', 1)[-1]}.service"
        self.home = root / "home"
        self.port = free_tcp_port()
        self.bin = root / "bin"
        self.bin.mkdir()
        (self.bin / "systemctl").write_text(f'#!/bin/sh\nexec {sys.executable} {DOUBLE} "$@"\n')
        (self.bin / "systemctl").chmod(0o755)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_") and k != "INVOCATION_ID"}
        return {
            **env,
            "PATH": f"{self.bin}:{env['PATH']}",
            "CORTEX_SYSTEMD_UNIT": str(self.unit),  # no CORTEX_HOME: root finds it through the unit
            "SYSTEMCTL_DOUBLE_STATE": str(self.root / "systemd-state"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cortexctl", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )

    def json(self, *args: str) -> dict:
        proc = self.run(*args, "--json")
        assert proc.returncode == 0, f"cortexctl {args}: {proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)


@pytest.fixture
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # the service user must reach its home: a private pytest tmp dir would not let it through
    root = Path(f"/tmp/cortex-svc-{uuid.uuid4().hex[:8]}")
    root.mkdir(mode=0o755)
    # a user of our own (removed after), unless this checkout is private to root
    python = Path(os.path.realpath(sys.executable))
    shared = _reachable_by_others(CORTEXCTL) and _reachable_by_others(python)
    user = f"ctxt{uuid.uuid4().hex[:8]}" if shared else "root"
    svc = Service(root, user)
    try:
        yield svc
    finally:
        svc.run("down")
        subprocess.run(["userdel", user], capture_output=True) if user != "root" else None
        subprocess.run(["groupdel", user], capture_output=True) if user != "root" else None
        shutil.rmtree(root, ignore_errors=True)


def test_rendered_unit_passes_systemd_analyze(service: Service) -> None:
    printed = service.run("service", "install", "--print", "--user", "root", "--home", str(service.home))
    assert printed.returncode == 0, printed.stderr
    unit_file = service.root / "cortex.service"
    unit_file.write_text(printed.stdout)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit_file)], capture_output=True, text=True)
    # only the warning about running as root may remain: the unit itself is valid
    problems = [
        line for line in verify.stderr.splitlines() if "root" not in line.lower() or "error" in line.lower()
    ]
    assert verify.returncode == 0 and not problems, verify.stderr
    text = printed.stdout
    assert f'Environment="CORTEX_HOME={service.home}"' in text
    assert f"ExecStart={CORTEXCTL} serve" in text
    assert "Restart=on-failure" in text and "KillMode=process" in text  # engines outlive a daemon restart
    assert "ProtectSystem=strict" in text and f"ReadWritePaths={service.home}" in text
    assert "PrivateTmp" not in text  # this home is under /tmp: a private /tmp would hide it
    assert not service.unit.exists(), "--print must change nothing"


def test_install_then_up_status_down_drive_the_unit(service: Service) -> None:
    service.home.mkdir(mode=0o700)
    (service.home / "cortex.yaml").write_text(f"port: {service.port}\n")

    installed = service.json(
        "service",
        "install",
        "--user",
        service.user,
        "--home",
        str(service.home),
        "--unit-file",
        str(service.unit),
    )
    assert installed["warnings"] == [] and installed["enabled"]
    assert stat.S_IMODE(service.unit.stat().st_mode) == 0o644
    pwd.getpwnam(service.user)  # the service user exists

    before = service.json("status")
    assert before["running"] is False and before["service"] == service.unit.name
    assert before["home"] == str(service.home)

    up = service.json("up")
    assert up["status"] == "started" and up["service"] == service.unit.name
    assert (
        up["admin_username"] == "admin" and len(up["admin_password"]) >= 16
    )  # shown: root prepared the home
    daemon = psutil.Process(up["pid"])
    assert daemon.username() == service.user
    assert "serve" in daemon.cmdline()
    assert httpx.get(f"http://127.0.0.1:{service.port}/ready", timeout=5).status_code == 200
    owner = pwd.getpwnam(service.user).pw_uid
    assert all(p.stat().st_uid == owner for p in [service.home, *service.home.rglob("*")])

    st = service.json("status")
    assert st["running"] and st["ready"] and st["pid"] == up["pid"] and st["service"] == service.unit.name
    assert service.json("up")["status"] == "already-running"

    refused = service.run("up", "--port", str(service.port + 1))
    assert refused.returncode == 1 and "--host/--port do not apply" in refused.stderr

    down = service.json("down")
    assert down == {"stopped": True, "pid": up["pid"]}
    assert not psutil.pid_exists(up["pid"]) or psutil.Process(up["pid"]).status() == psutil.STATUS_ZOMBIE
    assert service.json("status")["running"] is False

    again = service.json("up")  # a restart through the unit keeps the admin: no new password
    assert again["status"] == "started" and again["admin_password"] is None
    removed = service.json("service", "uninstall", "--unit-file", str(service.unit))
    assert removed["removed"] and not service.unit.exists()
    assert service.home.is_dir(), "uninstall keeps the data"


def test_install_refuses_a_user_that_cannot_reach_cortexctl(service: Service) -> None:
    """A checkout under root's private home cannot be run by the service user: refused with the fix."""
    from cortexctl.core import service_install
    from cortexctl.core.errors import DaemonError

    user = f"ctxr{uuid.uuid4().hex[:8]}"
    private = service.root / "private"
    private.mkdir(mode=0o700)
    fake = private / "cortexctl"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    plan = service_install.Plan(
        user=user, home=service.home, unit_file=service.unit, cortexctl=fake, groups=[]
    )
    try:
        with pytest.raises(DaemonError) as refused:
            service_install.apply(plan, enable=False)
        assert f"{user!r} cannot run {fake}" in refused.value.message
        assert "/opt/cortex" in (refused.value.fix or "")
        assert not service.unit.exists() and not service.home.exists()
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", user], capture_output=True)
