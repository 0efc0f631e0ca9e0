"""Every route's integer, string, list and path fields, walked from the app's own OpenAPI schema
with out-of-range values, as an operator and as a tenant admin: never a 5xx.

`rpm_limit: 2**70` was a 500 (the value reached PostgreSQL's int4), a 1 MB password was
stored (and could never log in), a 5,000-digit id in a path crashed int(). The cases are
generated from the schema, so a route added later is walked too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.access.conftest import PEER, AccessEnv, make_env

pytestmark = pytest.mark.slow

HOSTILE: dict[str, list[Any]] = {
    "integer": [2**70, -(2**70), 2**31, -1, 0, 1.5, 1e308, "9" * 5000, None],
    "number": [1e308, -1e308, 2**70, "NaN", None],
    "string": ["x" * 100_000, "", "\x00", "../../../../etc/shadow", "😀" * 1000, "9" * 5000, 12, None],
    "array": [["x" * 300] * 2000, [2**70], [None], [{"a": 1}], "x", None],
    "object": [{"k" * 1000: 1}, [], "x", None],
    "boolean": ["yes", 2, None],
}
PATH_VALUES = ["9" * 5000, "2147483648", "99999999999", "-1", "0", "x" * 5000, "..%2F..%2Fetc", "%00", "²"]
SKIP = {("POST", "/auth/logout")}  # would end the walking session itself


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def _types(schema: dict[str, Any], spec: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, spec)
    if "type" in schema:
        return {schema["type"]}
    out: set[str] = set()
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        out |= _types(alt, spec)
    return out or {"string"}


def _plausible(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    schema = _resolve(schema, spec)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = sorted(_types(schema, spec) - {"null"} or {"string"})[0]
    return {"integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}.get(kind, "walk-value-1")


def _cases(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, request kwargs) for every hostile value of every field."""
    for path, item in spec["paths"].items():
        if path.startswith("/test/"):
            continue
        for method, op in item.items():
            method = method.upper()
            if (method, path) in SKIP:
                continue
            params = op.get("parameters", [])
            base_path = {p["name"]: "no-such-thing" for p in params if p["in"] == "path"}
            body_schema = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            )
            body: dict[str, Any] | None = None
            props: dict[str, Any] = {}
            if body_schema is not None:
                resolved = _resolve(body_schema, spec)
                props = resolved.get("properties", {})
                body = {
                    name: _plausible(props[name], spec)
                    for name in resolved.get("required", [])
                    if name in props
                }

            def url(values: dict[str, str], path: str = path) -> str:
                out = path
                for name, value in values.items():
                    out = out.replace("{" + name + "}", value)
                return out

            yield method, path, {"url": url(base_path), "json": body}
            for name in base_path:
                for value in PATH_VALUES:
                    yield method, path, {"url": url({**base_path, name: value}), "json": body}
            for param in params:
                if param["in"] != "query":
                    continue
                for kind in _types(param.get("schema", {}), spec):
                    for value in HOSTILE.get(kind, []):
                        if value is None or isinstance(value, list | dict):
                            continue
                        value = value[:8000] if isinstance(value, str) else value  # URL length cap
                        yield (
                            method,
                            path,
                            {"url": url(base_path), "json": body, "params": {param["name"]: value}},
                        )
            for name, prop in props.items():
                for kind in _types(prop, spec) - {"null"}:
                    for value in HOSTILE.get(kind, []):
                        yield method, path, {"url": url(base_path), "json": {**(body or {}), name: value}}


@pytest.fixture
def walker(cortex_home: Any) -> Iterator[AccessEnv]:
    for env in make_env(cortex_home):
        # a 500 must come back as a response we count, not as an exception in the test
        with TestClient(env.app, client=PEER, raise_server_exceptions=False) as client:
            yield dataclasses.replace(env, client=client)


def test_every_route_field_out_of_range_is_never_a_5xx(walker: AccessEnv) -> None:
    env = walker
    env.org("tenant")
    password = env.user("tenant-admin", "admin", org="tenant")
    cookie, csrf = env.login("tenant-admin", password)
    principals = {
        "operator": env.auth(env.admin_token),
        "tenant admin session": env.session_headers(cookie, csrf),
    }
    spec = env.app.openapi()
    cases = list(_cases(spec))
    assert len({(m, p) for m, p, _ in cases}) >= 30, "the walk must cover the admin and auth API"
    failures = []
    sent = 0
    public = {
        (m.upper(), p)
        for p, item in spec["paths"].items()
        for m, op in item.items()
        if not op.get("security") and (p.startswith("/auth/login") or p in ("/health", "/ready"))
    }
    for i, (label, headers) in enumerate(principals.items()):
        for method, path, kwargs in cases:
            if i > 0 and (method, path) in public:
                continue  # a public route answers everyone alike: walked once
            kwargs = dict(kwargs)
            json_body = kwargs.pop("json")
            resp = env.client.request(
                method,
                kwargs.pop("url"),
                headers=headers,
                json=json_body if method != "GET" else None,
                **kwargs,
            )
            env.client.cookies.clear()
            sent += 1
            if resp.status_code >= 500:
                failures.append(
                    f"{label}: {method} {path} {str(json_body)[:200]} → {resp.status_code} {resp.text[:200]}"
                )
    print(f"\nwalked {sent} hostile requests over {len({(m, p) for m, p, _ in cases})} operations")
    assert not failures, f"{len(failures)} 5xx:\n" + "\n".join(failures[:40])
