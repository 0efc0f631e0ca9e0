"""The daemon's admin API, called with the local admin token in $CORTEX_HOME/admin.token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cortexctl.core.errors import (
    AuthenticationError,
    Conflict,
    CortexError,
    DaemonError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)

if TYPE_CHECKING:  # httpx and the settings are imported when a request is made (fast CLI start-up)
    import httpx

    from cortexctl.core.settings import Settings

_BY_STATUS: dict[int, type[CortexError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    503: ServiceUnavailable,
}


class AdminClient:
    def __init__(self, settings: Settings, *, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self._timeout = timeout_s

    def _token(self) -> str:
        path = self.settings.admin_token_file
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            raise DaemonError(
                f"No local admin token at {path}.", fix="Run `cortexctl up` once on this host to create it."
            ) from None
        except PermissionError:
            raise DaemonError(
                f"Cannot read {path}.", fix="Run cortexctl as the user that ran `cortexctl up`."
            ) from None
        return token

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        import httpx

        url = self.settings.url + path
        try:
            resp = httpx.request(
                method,
                url,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {self._token()}"},
                timeout=self._timeout,
                trust_env=False,
            )
        except httpx.ConnectError:
            raise DaemonError(
                f"The CORTEX daemon is not running at {self.settings.url}.",
                fix="Start it with `cortexctl up`.",
            ) from None
        except httpx.TimeoutException:
            raise DaemonError(
                f"The daemon at {self.settings.url} did not answer {method} {path} in time.",
                fix="Check `cortexctl status` and the daemon log.",
            ) from None
        if resp.status_code >= 400:
            raise _error_from(resp)
        return resp.json() if resp.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def _error_from(resp: httpx.Response) -> CortexError:
    code = None
    try:
        err = resp.json()["error"]
        message = err.get("message") or resp.text
        code = err.get("code") if isinstance(err.get("code"), str) else None  # e.g. model_not_found
    except (ValueError, KeyError, TypeError, AttributeError):
        message = f"HTTP {resp.status_code}: {resp.text[:200]}"
    cls = _BY_STATUS.get(resp.status_code, CortexError)
    return cls(message, code=code)
