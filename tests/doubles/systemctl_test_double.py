"""A stand-in for `systemctl` (this host's PID 1 is not systemd, so the real one cannot start units).

It understands the verbs CORTEX uses, for the one unit named by CORTEX_SYSTEMD_UNIT:
daemon-reload, enable, disable [--now], is-enabled, start, stop, show --property=MainPID --value.
`start` does what systemd would for our unit: runs ExecStart with the unit's Environment=
lines, as its User= (setpriv), in a new session, output to $SYSTEMCTL_DOUBLE_STATE/journal.log.
What it cannot model: cgroups, the hardening directives, Restart=, dependencies.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path


def _unit() -> Path:
    return Path(os.environ["CORTEX_SYSTEMD_UNIT"])


def _state() -> Path:
    path = Path(os.environ["SYSTEMCTL_DOUBLE_STATE"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pid() -> int:
    try:
        pid = int((_state() / "main.pid").read_text())
    except (FileNotFoundError, ValueError):
        return 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return 0
    # a zombie child of an earlier double invocation is gone for systemd too
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return 0 if stat == "Z" else pid


def _start() -> int:
    if _pid():
        return 0
    env = {"PATH": os.environ["PATH"]}
    user, exec_start = "root", ""
    for raw in _unit().read_text().splitlines():
        line = raw.strip()
        if line.startswith("Environment="):
            for assignment in shlex.split(line.removeprefix("Environment=")):
                key, _, value = assignment.partition("=")
                env[key] = value
        elif line.startswith("User="):
            user = line.removeprefix("User=")
        elif line.startswith("ExecStart="):
            exec_start = line.removeprefix("ExecStart=")
    argv = shlex.split(exec_start)
    if user != "root":  # setpriv execs (no fork, unlike runuser): the pid is the daemon's, as MainPID is
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]
    with open(_state() / "journal.log", "ab") as out:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd="/",
        )  # fmt: skip
    main = proc.pid
    (_state() / "main.pid").write_text(str(main))
    return 0


def _stop() -> int:
    pid = _pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid() and time.monotonic() < deadline:
            time.sleep(0.1)
    (_state() / "main.pid").unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    verb, rest = argv[0], argv[1:]
    names = [a for a in rest if not a.startswith("-")]
    if names and names[-1] != _unit().name:
        print(f"Unit {names[-1]} not found.", file=sys.stderr)
        return 5
    if verb == "daemon-reload":
        return 0
    if verb == "enable":
        (_state() / "enabled").touch()
        return 0
    if verb == "disable":
        (_state() / "enabled").unlink(missing_ok=True)
        return _stop() if "--now" in rest else 0
    if verb == "is-enabled":
        enabled = (_state() / "enabled").exists()
        print("enabled" if enabled else "disabled")
        return 0 if enabled else 1
    if verb == "start":
        return _start()
    if verb == "stop":
        return _stop()
    if verb == "show" and "--property=MainPID" in rest:
        print(_pid())
        return 0
    print(f"systemctl test double: unsupported {argv}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
