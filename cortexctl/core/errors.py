"""One exception tree for CORTEX, shared by the CLI and the daemon.

    CortexError                      message + fix; HTTP 500 "server_error"
    ├── ConfigError                  bad cortex.yaml / environment       (CLI only)
    ├── RecipeError                  bad recipe: file:line:field          400
    ├── InvalidRequest               malformed client input               400
    │   └── PayloadTooLarge                                               413
    ├── AuthenticationError          missing / wrong credentials          401
    ├── PermissionDenied             scope, allow-list, IP                403
    ├── NotFound                     unknown model, key, user …           404
    ├── Conflict                     name taken, wrong state              409
    ├── RateLimited                  429 with Retry-After
    ├── ServiceUnavailable           model not running, DB down …         503
    │   └── DatabaseUnavailable
    ├── UpstreamTimeout              engine did not answer in time        504
    ├── EngineError                  engine could not start / crashed
    │   └── UpstreamConnectionError  engine unreachable / dropped the connection (retryable)
    └── DaemonError                  the daemon could not start / be reached

The daemon renders these in OpenAI's error shape in one place
(`cortex_server.core.errors`); the CLI prints `message` and `fix` and exits 1.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CortexError(Exception):
    status_code: ClassVar[int] = 500
    openai_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        param: str | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.param = param
        self.code = code or self.default_code
        self.details = details or {}

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message} {self.fix}"


class ConfigError(CortexError):
    default_code = "config_error"


class RecipeError(CortexError):
    status_code = 400
    openai_type = "invalid_request_error"
    default_code = "invalid_recipe"


class InvalidRequest(CortexError):
    status_code = 400
    openai_type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status_code = 413
    default_code = "payload_too_large"


class AuthenticationError(CortexError):
    status_code = 401
    openai_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(CortexError):
    status_code = 403
    openai_type = "permission_error"
    default_code = "permission_denied"


class NotFound(CortexError):
    status_code = 404
    openai_type = "invalid_request_error"
    default_code = "not_found"


class Conflict(CortexError):
    status_code = 409
    openai_type = "invalid_request_error"
    default_code = "conflict"


class RateLimited(CortexError):
    status_code = 429
    openai_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(CortexError):
    status_code = 503
    openai_type = "service_unavailable"
    default_code = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    default_code = "database_unavailable"


class UpstreamTimeout(CortexError):
    status_code = 504
    openai_type = "timeout"
    default_code = "upstream_timeout"


class EngineError(CortexError):
    status_code = 502
    default_code = "engine_error"


class UpstreamConnectionError(EngineError):
    """The engine was unreachable or dropped the connection before answering: safe to retry elsewhere."""

    default_code = "upstream_unreachable"


class DaemonError(CortexError):
    default_code = "daemon_error"
