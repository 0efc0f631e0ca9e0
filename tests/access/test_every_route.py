"""Every route of the app, against no credentials, a key per scope, another org's admin and a
session per role: each must refuse (401/403) or admit exactly as its declared access says.
A route that declares no access at all fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from cortex_server.core.auth import ROLE_SCOPES
from cortex_server.services.keys import SCOPES
from tests.access.conftest import AccessEnv

# FastAPI's own documentation routes: public by design, and not APIRoutes.
PUBLIC_DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def flat_routes(app: FastAPI) -> list[BaseRoute]:
    """app.routes with included routers expanded (newer FastAPI keeps them as lazy _IncludedRouter)."""
    try:
        from fastapi.routing import _iter_included_route_candidates  # type: ignore[attr-defined]
    except ImportError:
        return list(app.routes)
    return list(_iter_included_route_candidates(app.routes))


def declared_access(route: APIRoute) -> dict[str, Any]:
    found = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        access = getattr(dep.call, "access", None)
        if access is not None:
            found.append(access)
        stack.extend(dep.dependencies)
    methods = ",".join(sorted(route.methods))
    assert found, f"{methods} {route.path} declares no access: add require_scope(...) or public_route"
    assert len(found) == 1, f"{methods} {route.path} declares access more than once: {found}"
    return found[0]


def admitted(access: dict[str, Any], *, kind: str, scopes: frozenset[str], operator: bool) -> bool:
    if access["public"]:
        return True
    if (kind == "key" and not access["keys"]) or (kind == "session" and not access["sessions"]):
        return False
    if access["scope"] is None:
        return True
    if not ("admin" in scopes or any(s in scopes for s in access["scopes"])):
        return False
    return operator or not access["operator"]


def _path(route: APIRoute) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-thing", route.path)


def _check(resp: Any, should_admit: bool, what: str) -> None:
    if should_admit:
        assert resp.status_code not in (401, 403), f"{what}: refused {resp.status_code} {resp.text}"
        assert resp.status_code < 500, f"{what}: {resp.status_code} {resp.text}"
    else:
        assert resp.status_code in (401, 403), f"{what}: admitted {resp.status_code} {resp.text}"


def test_a_route_without_declared_access_fails_the_check() -> None:
    app = FastAPI()

    @app.get("/forgot")
    def forgot() -> dict[str, str]:
        return {}

    (route,) = [r for r in flat_routes(app) if isinstance(r, APIRoute)]
    with pytest.raises(AssertionError, match="declares no access"):
        declared_access(route)


@pytest.mark.slow
def test_every_route_enforces_its_declared_access(env: AccessEnv) -> None:
    other = env.org("other-org")
    credentials: list[tuple[str, dict[str, str], str, frozenset[str], bool]] = [
        (
            f"key[{s}]",
            env.auth(env.key(f"every-{s.replace(':', '-')}", [s])),
            "key",
            frozenset({s}),
            s == "admin",
        )
        for s in SCOPES
    ]
    other_admin = env.key("other-admin", ["admin"], org=other["name"])
    credentials.append(("key[admin, other org]", env.auth(other_admin), "key", frozenset({"admin"}), False))
    passwords = {}
    for role, scopes in ROLE_SCOPES.items():
        passwords[role] = env.user(f"u-{role}", role)
        cookie, csrf = env.login(f"u-{role}", passwords[role])
        headers = env.session_headers(cookie, csrf)
        credentials.append((f"session[{role}]", headers, "session", scopes, "admin" in scopes))
    # a session without its CSRF header is refused on writes, admitted on reads
    owner_cookie, _ = env.login("admin", env.admin_password)

    checked = 0
    for route in flat_routes(env.app):
        if not isinstance(route, APIRoute):
            assert route.path in PUBLIC_DOCS, f"{route.path}: a non-API route must be one of {PUBLIC_DOCS}"
            assert env.client.get(route.path).status_code == 200
            continue
        access = declared_access(route)
        for method in sorted(route.methods - {"HEAD"}):
            path = _path(route)
            call = f"{method} {route.path}"
            resp = env.client.request(method, path)
            _check(resp, access["public"], f"{call} without credentials")
            if not access["public"]:
                assert resp.status_code == 401, f"{call} without credentials: {resp.status_code}"
            for label, headers, kind, scopes, operator in credentials:
                if route.path == "/auth/logout" and kind == "session":  # it really ends the session
                    role = label.removeprefix("session[").removesuffix("]")
                    headers = env.session_headers(*env.login(f"u-{role}", passwords[role]))
                resp = env.client.request(method, path, headers=headers)
                env.client.cookies.clear()
                _check(
                    resp, admitted(access, kind=kind, scopes=scopes, operator=operator), f"{call} as {label}"
                )
            if access["sessions"] and not access["public"]:
                resp = env.client.request(method, path, headers=env.session_headers(owner_cookie))
                env.client.cookies.clear()
                _check(resp, method in ("GET", "HEAD"), f"{call} as owner session without CSRF header")
            checked += 1
    assert checked >= 30  # the admin API, auth routes, health and the test inference route
