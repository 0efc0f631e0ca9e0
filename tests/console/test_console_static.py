"""The console's static export as the daemon serves it: routes, types, cache headers, CSP, fallbacks.

A small export tree is written here in the shape `next build` produces (pages as NAME.html plus
NAME.txt payloads, hashed assets under _next/static), so these run without Node.js; the browser
tests serve the real build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from cortex_server.api.console import CSP, IMMUTABLE, mount_console

PAGES = ["chat", "models", "keys", "login"]


def write_export(root: Path) -> Path:
    (root / "_next" / "static" / "chunks").mkdir(parents=True)
    (root / "_next" / "static" / "chunks" / "app-3f2a1b.js").write_text("console.log('chunk')")
    (root / "_next" / "static" / "css").mkdir()
    (root / "_next" / "static" / "css" / "a1b2.css").write_text("body{}")
    (root / "_next" / "BUILDID").mkdir()
    (root / "_next" / "BUILDID" / "_buildManifest.js").write_text("self.__BUILD_MANIFEST={}")
    (root / "index.html").write_text("<html>dashboard</html>")
    (root / "index.txt").write_text("rsc-index")
    (root / "404.html").write_text("<html>404</html>")
    for page in PAGES:
        (root / f"{page}.html").write_text(f"<html>{page} page</html>")
        (root / f"{page}.txt").write_text(f"rsc-{page}")
    (root / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (root / "docs-assets" / "swagger-ui").mkdir(parents=True)
    (root / "docs-assets" / "swagger-ui" / "swagger-ui-bundle.js").write_text("var SwaggerUIBundle")
    (root / "docs-assets" / "swagger-ui" / "swagger-ui.css").write_text(".swagger{}")
    (root / "docs-assets" / "redoc").mkdir()
    (root / "docs-assets" / "redoc" / "redoc.standalone.js").write_text("var Redoc")
    (root / "secret.txt").write_text("top")  # a root file is served; files outside root never are
    return root


def app_for(root: Path) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/admin/thing")
    def api_route() -> dict[str, str]:
        return {"api": "yes"}

    @app.post("/auth/login")
    def login() -> dict[str, str]:
        return {}

    mount_console(app, root)
    return app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    root = write_export(tmp_path / "console")
    (tmp_path / "outside.txt").write_text("must never be served")
    with TestClient(app_for(root)) as c:
        yield c


def test_pages_are_html_revalidated_and_locked_down(client: TestClient) -> None:
    for path, body in [("/", "dashboard"), ("/chat", "chat page"), ("/models", "models page")]:
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert body in resp.text
        assert resp.headers["content-type"] == "text/html; charset=utf-8"
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["content-security-policy"] == CSP
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"


def test_csp_allows_nothing_off_host() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    for name, value in directives.items():
        for source in value.split():
            assert source in ("'self'", "'none'", "'unsafe-inline'", "data:", "blob:"), (name, source)


def test_hashed_assets_are_immutable_and_typed(client: TestClient) -> None:
    js = client.get("/_next/static/chunks/app-3f2a1b.js")
    assert js.status_code == 200
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert js.headers["cache-control"] == IMMUTABLE
    css = client.get("/_next/static/css/a1b2.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    # not under static/: named by build id, not content hash, so revalidated
    manifest = client.get("/_next/BUILDID/_buildManifest.js")
    assert manifest.status_code == 200 and manifest.headers["cache-control"] == "no-cache"


def test_rsc_payloads_and_root_files(client: TestClient) -> None:
    rsc = client.get("/models.txt", params={"_rsc": "abc"})
    assert rsc.status_code == 200 and rsc.text == "rsc-models"
    assert rsc.headers["content-type"] == "text/plain; charset=utf-8"
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.headers["content-type"] == "image/x-icon"


def test_deep_links_fall_back_to_their_page(client: TestClient) -> None:
    for path, page in [("/chat/123", "chat page"), ("/models/gemma/logs", "models page")]:
        resp = client.get(path)
        assert resp.status_code == 200 and page in resp.text, path


@pytest.mark.parametrize(
    "path",
    [
        "/_next/static/../../outside.txt",
        "/_next/%2e%2e/%2e%2e/outside.txt",
        "/_next/static/chunks/missing.js",
        "/docs-assets/../outside.txt",
        "/nowhere",
        "/v1/nothing",
    ],
)
def test_nothing_outside_the_export_and_unknown_paths_are_json_404(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404, path
    assert "must never be served" not in resp.text
    assert resp.headers["content-type"].startswith("application/json")


def test_api_routes_keep_their_answers(client: TestClient) -> None:
    assert client.get("/admin/thing").json() == {"api": "yes"}
    assert client.get("/auth/login").status_code == 405  # no catch-all turns it into a page


def test_docs_load_their_assets_from_the_package(client: TestClient) -> None:
    for path, asset in [
        ("/docs", "/docs-assets/swagger-ui/swagger-ui-bundle.js"),
        ("/redoc", "/docs-assets/redoc/redoc.standalone.js"),
    ]:
        page = client.get(path)
        assert page.status_code == 200 and asset in page.text
        assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
        assert client.get(asset).status_code == 200


def test_a_daemon_without_a_console_build_says_how_to_get_one(tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    with TestClient(app_for(empty)) as c:
        for path in ("/", "/docs", "/redoc"):
            resp = c.get(path)
            assert resp.status_code == 200
            assert "install.sh" in resp.text and "Node.js" in resp.text
        assert c.get("/chat").status_code == 404


def test_head_answers_like_get_without_a_body(client: TestClient) -> None:
    for path in ("/", "/chat", "/_next/static/chunks/app-3f2a1b.js", "/docs"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"]
