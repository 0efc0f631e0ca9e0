"""The real daemon app in a process of its own, serving one model from a given upstream, so a
test can SIGKILL it under load: `python -m tests.reliability.daemon_process SPEC_JSON`.

SPEC_JSON: {"settings": {...Settings fields...}}. The daemon runs as `cortexctl serve` would,
supervisor on; the test's handle registers the upstream through a remote-engine recipe (the way
a user registers an endpoint, issue #11), so the model is routed by the daemon's own machinery.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cortex_server.app import create_app
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import Settings

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
spec:
  engine: remote
  served_name: {name}
  args:
    url: {url}
{key_line}    model: {name}
  timeouts:
    load_s: 60
    request_s: 30
"""


async def main(spec: dict[str, Any]) -> None:
    settings = Settings(**spec["settings"])
    prepare_database(settings)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False)
    )
    await server.serve()


class DaemonProcess:
    """The test's handle on one such process. Daemons on one database share the recipe: the first
    registers it, the others find it (409) and route to whichever daemon supervises it."""

    def __init__(
        self,
        *,
        home: Path,
        port: int,
        model: str,
        upstream: str,
        upstream_key: str | None = None,
        **settings: Any,
    ) -> None:
        self.home, self.port, self.model = home, port, model
        self.upstream = upstream.rstrip("/").removesuffix("/v1") + "/v1"
        self.upstream_key = upstream_key
        self.spec = {
            "settings": {"home": str(home), "port": port, "remote_engine_hosts": ["127.0.0.1"], **settings}
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return (self.home / "admin.token").read_text().strip()

    def start(self, timeout_s: float = 60) -> DaemonProcess:
        log = (self.home.parent / f"daemon-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.daemon_process", json.dumps(self.spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        registered = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited: {self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).is_success:
                    registered = registered or self._register()
                    if self.ready_model():
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the daemon did not route {self.model}: {self.log()[-3000:]}")

    def _key_line(self) -> str:
        if self.upstream_key is None:
            return ""
        name = f"{self.model}.key"
        secret = self.home / "secrets" / name
        secret.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.upstream_key + "\n")
        secret.chmod(0o600)  # an existing file keeps its mode through O_CREAT
        return f"    key_file: {name}\n"

    def _register(self) -> bool:
        """POST the remote recipe, started; a 409 says another daemon on this database (or this
        home's last run) already did. Either way the model is the database's from here."""
        yaml = RECIPE.format(name=self.model, url=self.upstream, key_line=self._key_line())
        made = httpx.post(
            self.url + "/admin/models",
            json={"yaml": yaml, "start": True},
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=30,
        )
        if made.status_code not in (201, 409):
            raise RuntimeError(f"registering {self.model}: {made.status_code} {made.text}")
        return True

    def ready_model(self) -> bool:
        """This daemon routes the model (a healthy replica, whoever supervises it)."""
        seen = httpx.get(
            f"{self.url}/v1/models/{self.model}",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=5,
        )
        return seen.status_code == 200 and seen.json().get("healthy_replicas", 0) >= 1

    def log(self) -> str:
        return (self.home.parent / f"daemon-{self.port}.log").read_text(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown, no flush
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
