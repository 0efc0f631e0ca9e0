"""Several real daemon processes on one PostgreSQL database and one Redis, behind nginx on loopback.

Each daemon is `cortex_server.main.serve` in its own process and home (same secret key, as a
deployment shares it: it keys the API-key hashes); nginx (Debian's) runs with a config of its
own in a temp dir, balancing over them and stepping past a daemon that stopped answering.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_CONF = """\
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  upstream cortex {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://cortex;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;            # server-sent events go out as they come
      proxy_read_timeout 600s;
      proxy_next_upstream error timeout;  # a refused connection tries the next daemon (POSTs that
                                          # reached a daemon are not re-sent: no double inference)
    }}
  }}
}}
"""


@dataclass
class Daemon:
    name: str
    home: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "cortexd.log"

    def start(self) -> Daemon:
        code = (
            "from cortex_server.main import serve; from cortexctl.core.settings import Settings; "
            "serve(Settings(), workers=1)"
        )
        out = open(self.home.parent / f"{self.name}.out", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=self.env, stdout=out, stderr=out, cwd=REPO
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, f"daemon {self.name} exited {self.proc.returncode}"
            assert time.monotonic() < deadline, f"daemon {self.name} not ready"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_lines(self, needle: str) -> list[str]:
        if not self.log_file.exists():
            return []
        out = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            try:
                msg = json.loads(line).get("msg", "")
            except ValueError:
                continue
            if needle in msg:
                out.append(msg)
        return out


@dataclass
class Cluster:
    root: Path
    database_url: str
    redis_url: str
    daemons: list[Daemon] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_daemons(self, n: int, **settings: str) -> list[Daemon]:
        secret = secrets.token_urlsafe(32)
        prefix = f"cortex-scaleout-{secrets.token_hex(4)}:"  # Redis keys of this cluster only
        for _ in range(n):
            name = f"d{len(self.daemons)}"
            home = self.root / name / "home"
            home.mkdir(parents=True)
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
            env.update(
                CORTEX_HOME=str(home),
                CORTEX_PORT=str(port),
                CORTEX_DATABASE_URL=self.database_url,
                CORTEX_REDIS_URL=self.redis_url,
                CORTEX_SECRET_KEY=secret,
                CORTEX_REDIS_KEY_PREFIX=prefix,
                CORTEX_RUNTIME="process",
                CORTEX_TRUSTED_PROXIES='["127.0.0.1/32"]',
                PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "server")]),  # this tree, not the venv's
                **{f"CORTEX_{k.upper()}": v for k, v in settings.items()},
            )
            self.daemons.append(Daemon(name=name, home=home, port=port, env=env))
        return self.daemons

    def start_nginx(self) -> None:
        servers = "\n".join(
            f"    server 127.0.0.1:{d.port} max_fails=1 fail_timeout=5s;" for d in self.daemons
        )
        conf = self.root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=self.root, servers=servers, port=self.port))
        log = open(self.root / "nginx.out", "ab")  # noqa: SIM115 - the child keeps it
        self.nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(self.root)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.url}/ready", timeout=1)
                return
            except httpx.TransportError:
                assert self.nginx.poll() is None, (self.root / "nginx.out").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: its workers go with it
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
