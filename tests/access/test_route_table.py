"""Who may call each route, written down independently of the routes' own declarations.

test_every_route.py proves each route *behaves* as it declares (every scope, role, org, CSRF).
This file proves each declaration is the one we reviewed: a route declared with too weak a
scope, opened to keys it should not take, or losing its operator-only mark fails here, and a
new route fails until someone adds it to the table (a review of who may call it). The table is
hand-written from SECURITY.md's model, never generated from the app.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from cortex_server.app import create_app
from cortexctl.core.settings import load_settings
from tests.access.test_every_route import declared_access, flat_routes


def public() -> dict[str, Any]:
    return {"public": True, "scopes": None, "operator": False}


def logged_in(*, keys: bool) -> dict[str, Any]:
    """Any authenticated principal (keys too when `keys`), no scope needed."""
    return {"public": False, "keys": keys, "sessions": True, "scopes": None, "operator": False}


def scoped(*scopes: str, operator: bool = False, keys: bool = True, sessions: bool = True) -> dict[str, Any]:
    """Callers holding any of `scopes` (`admin` implies every scope); operator = default-org admins."""
    return {"public": False, "keys": keys, "sessions": sessions, "scopes": scopes, "operator": operator}


# (method, path) -> who may call it. Reviewed against SECURITY.md: recipes, models' host-facing
# reads (logs, validate), system and org changes are the operators'; tenants manage their org's
# users and keys (bounded by policy.py), read usage, list models and infer.
ROUTE_ACCESS: dict[tuple[str, str], dict[str, Any]] = {
    # OpenAI API: API keys only (browsers use /api/chat)
    ("POST", "/v1/chat/completions"): scoped("inference", sessions=False),
    ("POST", "/v1/completions"): scoped("inference", sessions=False),
    ("POST", "/v1/embeddings"): scoped("inference", sessions=False),
    ("GET", "/v1/models"): scoped("inference", "models:read", sessions=False),
    ("GET", "/v1/models/{model_id:path}"): scoped("inference", "models:read", sessions=False),
    # probes and metrics
    ("GET", "/health"): public(),
    ("GET", "/ready"): public(),
    ("GET", "/metrics"): {**public(), "loopback_only": True},
    # browser sessions
    ("POST", "/auth/login"): public(),
    ("POST", "/auth/logout"): logged_in(keys=False),
    ("POST", "/auth/password"): logged_in(keys=False),
    ("GET", "/auth/sessions"): logged_in(keys=False),
    ("DELETE", "/auth/sessions/{session_id}"): logged_in(keys=False),
    ("GET", "/auth/me"): logged_in(keys=True),
    # orgs: operators change them; an org admin may read its own
    ("POST", "/admin/orgs"): scoped("admin", operator=True),
    ("GET", "/admin/orgs"): scoped("admin"),
    ("GET", "/admin/orgs/{ident}"): scoped("admin"),
    ("PATCH", "/admin/orgs/{ident}"): scoped("admin", operator=True),
    ("DELETE", "/admin/orgs/{ident}"): scoped("admin", operator=True),
    # users and keys of the caller's org
    ("POST", "/admin/users"): scoped("users:write"),
    ("GET", "/admin/users"): scoped("users:write"),
    ("GET", "/admin/users/{ident}"): scoped("users:write"),
    ("PATCH", "/admin/users/{ident}"): scoped("users:write"),
    ("DELETE", "/admin/users/{ident}"): scoped("users:write"),
    ("DELETE", "/admin/users/{ident}/sessions"): scoped("users:write"),
    ("POST", "/admin/keys"): scoped("keys:write"),
    ("GET", "/admin/keys"): scoped("keys:write"),
    ("GET", "/admin/keys/{ident}"): scoped("keys:write"),
    ("PATCH", "/admin/keys/{ident}"): scoped("keys:write"),
    ("POST", "/admin/keys/{ident}/revoke"): scoped("keys:write"),
    ("DELETE", "/admin/keys/{ident}"): scoped("keys:write"),
    # usage and audit of the caller's org
    ("GET", "/admin/usage"): scoped("usage:read"),
    ("GET", "/admin/audit"): scoped("admin"),
    # the appliance: operators only
    ("GET", "/admin/system"): scoped("admin", operator=True),
    ("POST", "/admin/models"): scoped("models:write", operator=True),
    ("GET", "/admin/models"): scoped("models:read"),
    ("GET", "/admin/models/{name}"): scoped("models:read"),
    ("POST", "/admin/models/{name}/start"): scoped("models:write", operator=True),
    ("POST", "/admin/models/{name}/validate"): scoped("models:read", operator=True),
    ("POST", "/admin/models/{name}/stop"): scoped("models:write", operator=True),
    ("POST", "/admin/models/{name}/restart"): scoped("models:write", operator=True),
    ("DELETE", "/admin/models/{name}"): scoped("models:write", operator=True),
    ("GET", "/admin/models/{name}/logs"): scoped("models:read", operator=True),
    ("GET", "/admin/recipes"): scoped("models:read", operator=True),
    ("GET", "/admin/recipes/{name}"): scoped("models:read", operator=True),
    ("GET", "/admin/recipes/{name}/yaml"): scoped("models:read", operator=True),
    ("POST", "/admin/recipes"): scoped("models:write", operator=True),
    ("PUT", "/admin/recipes/{name}"): scoped("models:write", operator=True),
    ("DELETE", "/admin/recipes/{name}"): scoped("models:write", operator=True),
    # the playground: browser sessions of users with the chat scope, never keys
    ("GET", "/api/chat/models"): scoped("chat", keys=False),
    ("GET", "/api/chat/sessions"): scoped("chat", keys=False),
    ("POST", "/api/chat/sessions"): scoped("chat", keys=False),
    ("GET", "/api/chat/sessions/{session_id}"): scoped("chat", keys=False),
    ("PATCH", "/api/chat/sessions/{session_id}"): scoped("chat", keys=False),
    ("DELETE", "/api/chat/sessions/{session_id}"): scoped("chat", keys=False),
    ("POST", "/api/chat/sessions/{session_id}/messages"): scoped("chat", keys=False),
    # API docs, served from the package
    ("GET", "/docs"): public(),
    ("GET", "/redoc"): public(),
}

CONSOLE_MODULE = "cortex_server.api.console"  # the static console: public GETs of built files only


def _app_routes() -> list[APIRoute]:
    app = create_app(load_settings(home=Path(tempfile.mkdtemp(prefix="cortex-routes-")), supervise=False))
    return [r for r in flat_routes(app) if isinstance(r, APIRoute)]


def test_every_route_is_in_the_reviewed_table_and_declares_exactly_that() -> None:
    seen: set[tuple[str, str]] = set()
    problems: list[str] = []
    for route in _app_routes():
        declared = declared_access(route)
        for method in sorted(route.methods - {"HEAD"}):
            call = (method, route.path)
            if route.endpoint.__module__ == CONSOLE_MODULE and call not in ROUTE_ACCESS:
                if method != "GET" or not declared["public"]:
                    problems.append(f"{method} {route.path}: console routes are public GETs of static files")
                continue
            seen.add(call)
            expected = ROUTE_ACCESS.get(call)
            if expected is None:
                problems.append(f"{method} {route.path}: not in ROUTE_ACCESS (review who may call it)")
                continue
            for field, want in expected.items():
                got = declared.get(field)
                if field == "scopes" and got is not None:
                    got = tuple(got)
                if got != want:
                    problems.append(f"{method} {route.path}: {field} is {got!r}, reviewed as {want!r}")
    missing = sorted(set(ROUTE_ACCESS) - seen)
    problems += [f"{m} {p}: in the table but not served" for m, p in missing]
    assert not problems, "\n".join(problems)


def test_the_table_check_catches_a_weakened_declaration() -> None:
    """Proof the comparison can fail: a route re-declared one scope weaker is reported."""
    (route,) = [r for r in _app_routes() if r.path == "/admin/recipes" and "POST" in r.methods]
    declared = declared_access(route)
    weakened = {**declared, "operator": False}
    expected = ROUTE_ACCESS[("POST", "/admin/recipes")]
    assert any(weakened.get(k) != v for k, v in expected.items())
    assert all((tuple(declared[k]) if k == "scopes" else declared.get(k)) == v for k, v in expected.items())
