"""Install and remove the systemd service (root-side): user, home, engine binary, unit file.

Kept apart from `systemd.py` (what every `up/down/status` reads) because only
`cortexctl service install` and `uninstall` needs it.
"""

from __future__ import annotations

import grp
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cortexctl.core import systemd
from cortexctl.core.errors import CortexError, DaemonError


@dataclass
class Plan:
    user: str
    home: Path
    unit_file: Path
    cortexctl: Path
    groups: list[str]
    env: dict[str, str] = field(default_factory=dict)
    engine_copy: tuple[Path, Path] | None = None  # (built binary, copy the service user can run)

    @property
    def unit_text(self) -> str:
        return systemd.render_unit(
            cortexctl=self.cortexctl, home=self.home, user=self.user, groups=self.groups, env=self.env
        )


def plan(*, user: str, home: Path, unit_file: Path | None) -> Plan:
    """What `apply` will do; also what `--print` shows."""
    cortexctl = Path(sys.executable).parent / "cortexctl"
    if not cortexctl.is_file():
        raise DaemonError(
            f"cortexctl is not installed next to {sys.executable}.",
            fix="Run `cortexctl service install` from the virtual environment install.sh made.",
        )
    groups = ["docker"] if _group_exists("docker") else []
    result = Plan(
        user=user, home=home, unit_file=unit_file or systemd.unit_path(), cortexctl=cortexctl, groups=groups
    )
    engine = _built_llama_server()
    if engine is not None and not _reachable_by_others(engine):
        # The build cache lives in root's home, which the service user cannot enter.
        copy = home / "bin" / "llama-server"
        result.engine_copy = (engine, copy)
        result.env["CORTEX_LLAMA_SERVER_BIN"] = str(copy)
    return result


def apply(p: Plan, *, enable: bool) -> dict[str, object]:
    warnings: list[str] = []
    _ensure_user(p.user, p.home)
    if not _can_execute_as(p.user, p.cortexctl):
        raise DaemonError(
            f"The service user {p.user!r} cannot run {p.cortexctl} (it, its Python or a directory on the way "
            "is private to another user).",
            fix="Install CORTEX where every user can read it (e.g. clone into /opt/cortex and run "
            "/opt/cortex/install.sh --systemd), or pass --user root.",
        )
    p.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if p.engine_copy is not None:
        built, copy = p.engine_copy
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, copy)
        copy.chmod(0o755)
    if p.user != "root":
        systemd.chown_tree(p.home, p.user)
    p.unit_file.parent.mkdir(parents=True, exist_ok=True)
    p.unit_file.write_text(p.unit_text)
    p.unit_file.chmod(0o644)
    for args in (("daemon-reload",), ("enable", p.unit_file.name)) if enable else (("daemon-reload",),):
        try:
            systemd.systemctl(*args)
        except DaemonError as exc:  # e.g. a container without systemd: the unit is written all the same
            warnings.append(exc.message)
    return {
        "unit_file": str(p.unit_file),
        "user": p.user,
        "home": str(p.home),
        "groups": p.groups,
        "engine_copy": str(p.engine_copy[1]) if p.engine_copy else None,
        "enabled": enable and not warnings,
        "warnings": warnings,
    }


def remove(unit_file: Path | None) -> dict[str, object]:
    path = unit_file or systemd.unit_path()
    unit = systemd.read_unit(path)
    if unit is None:
        return {"unit_file": str(path), "removed": False, "home": None}
    systemd.systemctl("disable", "--now", path.name, check=False)
    path.unlink()
    systemd.systemctl("daemon-reload", check=False)
    return {"unit_file": str(path), "removed": True, "home": str(unit.home)}


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _ensure_user(user: str, home: Path) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home",
             "--shell", "/usr/sbin/nologin", user],
            check=True, capture_output=True, text=True,
        )  # fmt: skip


def _can_execute_as(user: str, path: Path) -> bool:
    """Whether `user` can run `path` for real: its interpreter and packages must be reachable too."""
    argv = [str(path), "--version"]
    if user != "root":
        argv = ["runuser", "-u", user, "--", *argv]
    try:
        return subprocess.run(argv, capture_output=True, timeout=60, cwd="/").returncode == 0
    except OSError:
        return False


def _built_llama_server() -> Path | None:
    from cortexctl.core.settings import load_settings
    from cortexctl.engines.llamacpp.binary import find_llama_server

    try:
        return find_llama_server(load_settings()).resolve()
    except CortexError:  # no engine built yet (or a bad config): the service runs without a local copy
        return None


def _reachable_by_others(path: Path) -> bool:
    """Every directory from / to `path` is searchable by others and the file executable by them."""
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        if not mode & 0o001:
            return False
    return True
