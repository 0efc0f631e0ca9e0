import json
import os
import socket
import stat

import httpx

from tests.support.cortexctl_cli import Cortexctl


def test_up_status_down_cycle(cortexctl: Cortexctl) -> None:
    up = cortexctl.run("up", "--json", check=True)
    started = json.loads(up.stdout)
    assert started["status"] == "started"
    assert started["admin_username"] == "admin" and len(started["admin_password"]) >= 16

    url = f"http://127.0.0.1:{cortexctl.port}"
    assert httpx.get(url + "/health").status_code == 200
    assert httpx.get(url + "/ready").json()["status"] == "ready"

    st = cortexctl.json("status")
    assert st["running"] and st["ready"]
    assert st["pid"] == started["pid"] and st["url"] == url
    assert st["version"] and st["database"] == "sqlite"

    token_file = cortexctl.home / "admin.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600

    again = cortexctl.run("up", "--json", check=True)  # idempotent: no second daemon, no new password
    assert json.loads(again.stdout)["status"] == "already-running"

    down = cortexctl.run("down", check=True)
    assert "Stopped" in down.stdout
    second = cortexctl.run("down")
    assert second.returncode == 0 and "not running" in second.stdout
    assert not cortexctl.json("status")["running"]

    # A restart keeps the same admin user: no new password is printed.
    restarted = json.loads(cortexctl.run("up", "--json", check=True).stdout)
    assert restarted["admin_password"] is None


def test_up_refuses_a_port_in_use_and_names_it(cortexctl: Cortexctl) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", cortexctl.port))
        sock.listen()
        proc = cortexctl.run("up")
    assert proc.returncode == 1
    assert f"Port {cortexctl.port}" in proc.stderr and "--port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_database_is_named_without_password(cortexctl: Cortexctl) -> None:
    cortexctl.extra_env["CORTEX_DATABASE_URL"] = "postgresql+psycopg://cortex:hunter2@127.0.0.1:1/cortex"
    proc = cortexctl.run("up")
    assert proc.returncode == 1
    assert "127.0.0.1:1/cortex" in proc.stderr
    assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_config_file_gives_file_and_line(cortexctl: Cortexctl) -> None:
    (cortexctl.home / "cortex.yaml").write_text("port: 1\nhost: {oops\n")
    proc = cortexctl.run("status")
    assert proc.returncode == 1
    assert f"{cortexctl.home / 'cortex.yaml'}:" in proc.stderr and "Traceback" not in proc.stderr


def test_every_command_has_help_and_version(cortexctl: Cortexctl) -> None:
    assert cortexctl.run("--version", check=True).stdout.startswith("cortexctl ")
    for cmd in (
        ["up"],
        ["down"],
        ["status"],
        ["serve"],
        ["doctor"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
    ):
        proc = cortexctl.run(*cmd, "--help", check=True)
        assert "Usage" in proc.stdout


def test_doctor_reports_each_check(cortexctl: Cortexctl) -> None:
    proc = cortexctl.run("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert {"python", "disk", "port", "database", "redis", "docker", "gpus"} <= set(checks)
    assert checks["python"]["status"] == "OK" and checks["database"]["status"] == "OK"
    assert checks["gpus"]["status"] in ("OK", "WARN")
    assert all(c["status"] != "FAIL" or c["fix"] for c in checks.values())
