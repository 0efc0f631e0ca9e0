"""Browser-test fixtures: one real appliance (daemon + gemma3-270m on a real llama-server, started
by `cortexctl up --demo` exactly as the README says) and Debian's Chromium driven by Playwright.

Chromium is the system package (`apt-get install chromium`; install.sh --dev does it), never a
browser Playwright downloads. Every request any page makes is recorded, and each test ends by
checking they all went to the daemon's own origin: the console needs nothing off the host.
Screenshots of the main pages land in tests/browser/artifacts/ (ignored by git).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortexctl.engines.llamacpp.binary import built_llama_server
from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC = Path(__file__).resolve().parents[2] / "server" / "cortex_server" / "static" / "console"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DEMO_MODEL = "gemma3-270m-cpu"
SERVED = "gemma3-270m"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs all of these: missing there is a bug, not a skip
    pytest.skip(message)


@dataclass
class Appliance:
    url: str
    home: Path
    env: dict[str, str]
    admin_user: str
    admin_password: str
    admin_token: str
    demo_key: str

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "cortexctl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"cortexctl {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
        return proc

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = httpx.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        assert resp.status_code < 300, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def user(self, username: str, role: str, *, org: str | None = None) -> str:
        password = f"pw-{username}-correct-horse"
        self.admin(
            "POST",
            "/admin/users",
            json={"username": username, "role": role, "password": password, **({"org": org} if org else {})},
        )
        return password


@pytest.fixture(scope="package")  # torn down when the browser tests end (see `chromium`)
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    if not (STATIC / "index.html").is_file():
        _missing(f"the console is not built into {STATIC} (run ./install.sh with Node.js >= 18)")
    llama = built_llama_server()
    if not llama.is_file():
        _missing(f"llama-server not built at {llama} (run ./install.sh)")
    home = tmp_path_factory.mktemp("browser") / "home"
    home.mkdir()
    port = free_port()
    base = 21000 + (os.getpid() % 150) * 40  # below the ephemeral range (32768+), away from 18000-18999
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    env.update(
        CORTEX_HOME=str(home),
        CORTEX_PORT=str(port),
        CORTEX_RUNTIME="process",
        CORTEX_LLAMA_SERVER_BIN=str(llama),
        CORTEX_ENGINE_PORT_RANGE=json.dumps([base, base + 39]),
        CORTEX_USAGE_FLUSH_INTERVAL_S="0.2",
    )
    up = subprocess.run(
        [sys.executable, "-m", "cortexctl", "up", "--demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert up.returncode == 0, f"cortexctl up --demo failed:\n{up.stdout}\n{up.stderr}"
    out = json.loads(up.stdout)
    app = Appliance(
        url=out["url"],
        home=home,
        env=env,
        admin_user=out["admin_username"],
        admin_password=out["admin_password"],
        admin_token=Path(out["admin_token_file"]).read_text().strip(),
        demo_key=out["demo"]["api_key"],
    )
    try:
        yield app
    finally:
        subprocess.run(
            [sys.executable, "-m", "cortexctl", "model", "stop", DEMO_MODEL],
            env=env,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if app.admin("GET", f"/admin/models/{DEMO_MODEL}")["state"] == "stopped":
                    break
            except AssertionError:
                break
            time.sleep(0.3)
        subprocess.run([sys.executable, "-m", "cortexctl", "down"], env=env, capture_output=True, timeout=60)


@dataclass
class Browser:
    """One Chromium; `context()` opens a fresh profile (another device) that records its requests."""

    browser: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def context(self) -> Any:
        ctx = self.browser.new_context(base_url=self.origin, viewport={"width": 1360, "height": 860})
        ctx.on("request", lambda req: self.requests.append(req.url))
        ctx.set_default_timeout(20_000)
        self.contexts.append(ctx)
        return ctx

    def page(self) -> Any:
        return self.context().new_page()

    def offsite(self) -> list[str]:
        return [
            u
            for u in self.requests
            if not (u.startswith(self.origin + "/") or u.split(":", 1)[0] in ("data", "blob"))
        ]


# Package scope, not session: Playwright's sync API keeps its event loop marked as running in the
# main thread while it lives, so every asyncio test collected after tests/browser/ would fail
# ("Runner.run() cannot be called from a running event loop").
@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        _missing(f"no {CHROMIUM}: apt-get install -y chromium (./install.sh --dev does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(chromium: Any, appliance: Appliance) -> Iterator[Browser]:
    b = Browser(browser=chromium, origin=appliance.url)
    yield b
    for ctx in b.contexts:
        ctx.close()
    assert b.requests, "the pages made no request at all"
    assert b.offsite() == [], f"requests left the daemon's origin: {b.offsite()}"


@pytest.fixture
def login(appliance: Appliance) -> Callable[..., Any]:
    def do(page: Any, username: str | None = None, password: str | None = None, *, then: str = "/") -> Any:
        page.goto(f"/login?next={then}")
        page.get_by_label("Username").fill(username or appliance.admin_user)
        page.get_by_label("Password").fill(password or appliance.admin_password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"**{then}*")
        page.get_by_test_id("whoami").or_(page.get_by_label("Search chats")).first.wait_for()
        return page

    return do


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
