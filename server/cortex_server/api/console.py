"""The browser console, the chat playground and the API docs, served from the package.

The console is a Next.js static export that install.sh copies into `cortex_server/static/console`
(ignored by git, shipped as package data), so an air-gapped host needs no Node.js. Routes are
generated from what the export holds at start-up rather than one catch-all `/{path}`: a catch-all
would answer every unknown API path (and turn a 405 on `GET /auth/login` into an HTML page).

Headers: hashed `_next/static` assets are immutable; HTML and everything else is `no-cache`
(revalidated, so an upgrade shows at once). Every page carries a CSP that lets nothing load from
or connect to another host; Next's export bootstraps with inline scripts, hence 'unsafe-inline'.
`/docs` and `/redoc` load Swagger UI and ReDoc from `docs-assets/` in the same export (vendored
from npm at build time), never from a CDN.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from cortex_server.api.deps import public_route

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "console"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
_METHODS = ["GET", "HEAD"]
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",  # React Server Component payloads fetched on navigation
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".map": "application/json",
}

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CORTEX</title></head>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>The CORTEX console is not installed</h1>
<p>This daemon runs, but its package carries no console build. Install Node.js 18 or newer and
rerun <code>./install.sh</code> (it builds the console into the package), or install from an offline
bundle, whose wheel already carries it.</p>
<p>The API works without it: <a href="/openapi.json">/openapi.json</a>, <code>cortexctl --help</code>.</p>
</body></html>"""


def content_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _file(path: Path, *, immutable: bool = False) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": IMMUTABLE if immutable else REVALIDATE}
    return FileResponse(path, media_type=content_type(path), headers=headers)


def _inside(root: Path, rel: str) -> Path | None:
    """`root/rel` if it is a file under root (no `..`, no symlink out), else None."""
    try:
        candidate = (root / rel).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _not_found() -> Response:
    return Response(
        b'{"error":{"message":"Not found.","type":"invalid_request_error","param":null,"code":"not_found"}}',
        status_code=404,
        media_type="application/json",
        headers={"cache-control": REVALIDATE},
    )


def _docs_page(title: str, body: str) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="/icon.svg" type="image/svg+xml">{body}</html>'
    )
    headers = {**SECURITY_HEADERS, "cache-control": REVALIDATE}
    return HTMLResponse(html, headers=headers)


def _add_docs_routes(router: APIRouter, root: Path) -> None:
    has_assets = (root / "docs-assets" / "swagger-ui" / "swagger-ui-bundle.js").is_file()

    @router.api_route("/docs", methods=_METHODS, include_in_schema=False)
    def swagger_ui() -> Response:
        if not has_assets:
            return HTMLResponse(NOT_BUILT, status_code=200, headers=SECURITY_HEADERS)
        return _docs_page(
            "CORTEX API",
            '<link rel="stylesheet" href="/docs-assets/swagger-ui/swagger-ui.css"></head><body>'
            '<div id="swagger-ui"></div><script src="/docs-assets/swagger-ui/swagger-ui-bundle.js"></script>'
            '<script src="/docs-assets/swagger-init.js"></script></body>',
        )

    @router.api_route("/redoc", methods=_METHODS, include_in_schema=False)
    def redoc() -> Response:
        if not has_assets:
            return HTMLResponse(NOT_BUILT, status_code=200, headers=SECURITY_HEADERS)
        return _docs_page(
            "CORTEX API reference",
            '</head><body><redoc spec-url="/openapi.json"></redoc>'
            '<script src="/docs-assets/redoc/redoc.standalone.js"></script></body>',
        )


def _add_tree_route(router: APIRouter, root: Path, name: str) -> None:
    base = root / name
    immutable = name == "_next"

    @router.api_route(
        f"/{name}/{{rest:path}}", methods=_METHODS, include_in_schema=False, name=f"console-dir-{name}"
    )
    def tree_file(rest: str) -> Response:
        found = _inside(base, rest)
        if found is None:
            return _not_found()
        return _file(found, immutable=immutable and rest.startswith("static/"))


def _add_page_routes(router: APIRouter, root: Path, page: str) -> None:
    html = root / f"{page}.html"
    folder = root / page

    @router.api_route(f"/{page}", methods=_METHODS, include_in_schema=False, name=f"console-page-{page}")
    def page_route() -> Response:
        return _file(html)

    @router.api_route(
        f"/{page}/{{rest:path}}", methods=_METHODS, include_in_schema=False, name=f"console-page-{page}-deep"
    )
    def page_deep(rest: str) -> Response:
        # nested export files (e.g. RSC payloads), else the page itself: deep links and reloads
        found = _inside(folder, rest) if folder.is_dir() else None
        return _file(found) if found is not None else _file(html)


def _add_root_file_route(router: APIRouter, path: Path) -> None:
    @router.api_route(
        f"/{path.name}", methods=_METHODS, include_in_schema=False, name=f"console-file-{path.name}"
    )
    def root_file() -> Response:
        return _file(path)


def console_router(root: Path = STATIC_DIR) -> APIRouter:
    """Routes for what `root` holds now (rebuilt on each daemon start)."""
    router = APIRouter(dependencies=[Depends(public_route)], tags=["console"])
    root = root.resolve()
    _add_docs_routes(router, root)
    index = root / "index.html"
    if not index.is_file():

        @router.api_route("/", methods=_METHODS, include_in_schema=False)
        def not_built() -> Response:
            return HTMLResponse(NOT_BUILT, headers={**SECURITY_HEADERS, "cache-control": REVALIDATE})

        return router

    @router.api_route("/", methods=_METHODS, include_in_schema=False)
    def home() -> Response:
        return _file(index)

    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not (root / f"{entry.name}.html").is_file():
            _add_tree_route(router, root, entry.name)
        elif entry.suffix == ".html" and entry.stem not in ("index", "404"):
            _add_page_routes(router, root, entry.stem)
        elif entry.is_file() and entry.suffix != ".html":
            _add_root_file_route(router, entry)
    return router


def mount_console(app: FastAPI, root: Path = STATIC_DIR) -> None:
    """Last, after every API router: console pages never shadow an API path."""
    app.include_router(console_router(root))
