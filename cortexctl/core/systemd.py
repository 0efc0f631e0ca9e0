"""Run the daemon as a systemd service: the unit file, its installation, and systemctl.

`cortexctl service install` (what `install.sh --systemd` calls) writes one unit,
`cortex.service`, that runs `cortexctl serve` as a dedicated system user with the
data in that user's home. `cortexctl up`, `down` and `status` notice the unit when its
`CORTEX_HOME` is the home they act on and drive it through systemctl, so there is
never a second, hand-started daemon beside the service.

Why these unit settings:
- `KillMode=process`: engines are the daemon's children (process runtime) and must
  survive a daemon restart to be re-adopted, as they do after `cortexctl down`.
- The hardening keeps the filesystem read-only except the home; Docker access keeps
  working because connecting to /run/docker.sock is not a write to the filesystem,
  and the service user gets the `docker` group (root-equivalent: see the README).
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cortexctl.core.errors import DaemonError

UNIT_NAME = "cortex.service"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_USER = "cortex"
DEFAULT_HOME = Path("/var/lib/cortex")
# Tests (and unusual hosts) point the CLI at another unit file.
UNIT_ENV = "CORTEX_SYSTEMD_UNIT"

HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictSUIDSGID=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "RestrictNamespaces=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "UMask=0077",
)


@dataclass(frozen=True)
class Unit:
    """What CORTEX needs to know of an installed unit."""

    path: Path
    user: str
    home: Path
    exec_start: str


def unit_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env[UNIT_ENV]) if env.get(UNIT_ENV) else DEFAULT_UNIT_DIR / UNIT_NAME


def render_unit(
    *, cortexctl: Path, home: Path, user: str, groups: list[str], env: dict[str, str] | None = None
) -> str:
    environment = {"CORTEX_HOME": str(home), **(env or {})}
    lines = [
        "# Written by `cortexctl service install`; rerun it rather than editing this file.",
        "[Unit]",
        "Description=CORTEX LLM inference appliance (gateway daemon)",
        "After=network-online.target docker.service postgresql.service redis-server.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={user}",
        f"Group={user}",
    ]
    if groups:
        lines.append("SupplementaryGroups=" + " ".join(groups))
    lines += [f'Environment="{key}={value}"' for key, value in environment.items()]
    lines += [
        f"ExecStart={shlex.quote(str(cortexctl))} serve",
        "Restart=on-failure",
        "RestartSec=2s",
        "TimeoutStopSec=30s",
        "KillMode=process",
        "KillSignal=SIGTERM",
        "LimitNOFILE=65536",
        f"ReadWritePaths={home}",
        *HARDENING,
        # a private /tmp would hide a home kept under /tmp
        *([] if _under_tmp(home) else ["PrivateTmp=yes"]),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _under_tmp(path: Path) -> bool:
    return any(path == Path(t) or Path(t) in path.parents for t in ("/tmp", "/var/tmp"))


def read_unit(path: Path) -> Unit | None:
    """The installed unit, or None if there is none (or it is not one of ours)."""
    try:
        text = path.read_text()
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        return None
    user, home, exec_start = "root", None, ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("User="):
            user = line.removeprefix("User=")
        elif line.startswith("ExecStart="):
            exec_start = line.removeprefix("ExecStart=")
        elif line.startswith("Environment="):
            for assignment in shlex.split(line.removeprefix("Environment=")):
                key, _, value = assignment.partition("=")
                if key == "CORTEX_HOME":
                    home = Path(value)
    if home is None or not exec_start.endswith(" serve"):
        return None
    return Unit(path=path, user=user, home=home, exec_start=exec_start)


def managing_unit(home: Path, environ: dict[str, str] | None = None) -> Unit | None:
    """The installed unit if it runs the daemon of `home` (so up/down/status go through it)."""
    unit = read_unit(unit_path(environ))
    if unit is None:
        return None
    try:
        same = unit.home.resolve() == home.expanduser().resolve()
    except OSError:
        same = False
    return unit if same else None


def _systemctl() -> str:
    exe = shutil.which("systemctl")
    if exe is None:
        raise DaemonError(
            "The CORTEX systemd unit is installed but systemctl is not on PATH.",
            fix="Run `cortexctl serve` under your own supervisor, or remove the unit "
            "(`cortexctl service uninstall`).",
        )
    return exe


def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([_systemctl(), *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}"
        raise DaemonError(
            f"`systemctl {' '.join(args)}` failed: {detail}",
            fix=f"See `journalctl -u {UNIT_NAME}`; is systemd running here (`systemctl is-system-running`)?",
        )
    return proc


def main_pid(unit: Unit) -> int | None:
    """The service's main pid, None while it is not running."""
    out = systemctl("show", "--property=MainPID", "--value", unit.path.name, check=False).stdout.strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


def is_enabled(unit: Unit) -> bool:
    return systemctl("is-enabled", unit.path.name, check=False).stdout.strip() == "enabled"


def chown_tree(root: Path, user: str) -> None:
    """Give the home to the service user (after root prepared it: database, admin, token)."""
    entry = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, entry.pw_uid, entry.pw_gid)
