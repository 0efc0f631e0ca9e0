"""The one settings object, shared by cortexctl and the daemon.

Read, highest priority first, from: explicit overrides, `CORTEX_*` environment
variables, `$CORTEX_HOME/cortex.yaml`, defaults. Only the entrypoints (CLI callback,
`create_app`) build it; everything below takes it as an argument.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cortexctl.core.errors import ConfigError
from cortexctl.core.yamldoc import YamlDoc, YamlSyntaxError, load_yaml_file

CONFIG_FILE_NAME = "cortex.yaml"


def default_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("CORTEX_HOME"):
        return Path(env["CORTEX_HOME"]).expanduser()
    # systemd sets INVOCATION_ID for every unit it starts: a root service keeps its
    # data where services do, an interactive root shell keeps it in $HOME.
    if os.geteuid() == 0 and env.get("INVOCATION_ID"):
        return Path("/var/lib/cortex")
    if os.geteuid() == 0:
        # root drives the installed service (`cortexctl service install`) from a shell
        from cortexctl.core.systemd import read_unit, unit_path

        unit = read_unit(unit_path(dict(env)))
        if unit is not None:
            return unit.home
    return Path.home() / ".local" / "share" / "cortex"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORTEX_", extra="forbid", validate_default=True)

    home: Path = Field(default_factory=default_home, description="data directory")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in home")
    redis_url: str | None = Field(None, description="optional Redis for rate limits and cache invalidation")
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="gateway processes of `serve` (default: cores up to 8 with Redis and PostgreSQL, else 1)",
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    secret_key: SecretStr | None = Field(
        None, description="signs sessions, keys key hashes; default: home/secret.key"
    )
    runtime: Literal["auto", "process", "docker"] = "auto"
    llama_server_bin: Path | None = Field(
        None, description="llama-server binary; default: the one install.sh built"
    )
    vllm_bin: Path | None = Field(
        None, description="vllm executable for the process runtime; default: vllm on PATH"
    )
    model_roots: list[Path] = Field(
        default_factory=list,
        description="folders besides $CORTEX_HOME/models whose files recipes may name (absolute paths)",
    )
    engine_port_range: tuple[int, int] = (18000, 18999)
    max_request_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    ready_timeout_s: float = Field(30.0, gt=0)
    model_load_timeout_s: float = Field(600.0, gt=0)
    health_poll_interval_s: float = Field(1.0, gt=0)
    supervise: bool = Field(True, description="run the model supervisor in this daemon")
    # gateway
    routing_policy: Literal["round_robin", "least_outstanding"] = "least_outstanding"
    circuit_breaker_failures: int = Field(3, ge=1, description="consecutive failures that eject a replica")
    circuit_breaker_cooldown_s: float = Field(
        2.0, ge=0, description="an ejected replica stays out at least this long"
    )
    upstream_max_connections: int = Field(
        512, ge=1, description="idle keep-alive connections kept per replica"
    )
    stream_buffer_max_bytes: int = Field(
        1024 * 1024,
        ge=4096,
        description="per stream: engine bytes the gateway holds for a client that reads slowly; "
        "beyond it the gateway stops reading from the engine until the client catches up",
    )
    stream_send_timeout_s: float = Field(
        30.0,
        ge=0,
        description="a stream's client that takes no bytes for this long is dropped (499) and its "
        "engine request cancelled, freeing the engine slot (0: never)",
    )
    usage_flush_interval_s: float = Field(0.5, gt=0)
    usage_batch_max: int = Field(1000, ge=1)
    usage_journal_max_bytes: int = Field(
        256 * 1024 * 1024, ge=4096, description="cap on the usage journal on disk (records not yet in the DB)"
    )
    usage_journal_fsync: Literal["every_second", "always"] = Field(
        "every_second",
        description="how durable a usage record is when its response ends: written (survives any "
        "death of the daemon) and fsync'd within a second (a power loss can lose that second), or "
        "fsync'd (survives a power loss too; about 0.1-0.35 ms more CPU per request)",
    )
    usage_journal_full_policy: Literal["refuse", "serve"] = Field(
        "refuse",
        description="when no usage record can be made durable (disk full, cap reached): refuse new "
        "inference with 503, or serve and count the records that are only in memory",
    )
    # observability
    metrics_enabled: bool = Field(True, description="instrument the gateway and serve GET /metrics")
    metrics_access: Literal["loopback", "scope", "open"] = Field(
        "loopback",
        description="who may GET /metrics: loopback clients without credentials (others need the "
        "'metrics:read' scope), always the scope, or anyone",
    )
    metrics_listen: str | None = Field(
        None, description="also serve /metrics, without credentials, on this HOST:PORT (e.g. 127.0.0.1:9464)"
    )
    engine_metrics_interval_s: float = Field(
        5.0, ge=0, description="how often the health poller scrapes each engine's /metrics (0: never)"
    )

    # access control
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs of reverse proxies whose X-Forwarded-For/-Proto we believe"
    )
    ratelimit_fail_mode: Literal["open", "closed"] = Field(
        "closed",
        description="when Redis is unreachable: admit (open) or refuse with 503 (closed) limited keys",
    )
    ratelimit_lease_s: float = Field(
        6.0,
        ge=1,
        le=3600,
        description="a concurrency slot is leased this long and renewed while its request runs; "
        "a slot whose daemon died or stalled frees itself after at most this long",
    )
    auth_stale_max_s: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="while the database is unreachable, keys verified within this long are still "
        "served from memory (0: never)",
    )
    redis_key_prefix: str = Field(
        "cortex:", description="prefix of every Redis key and channel this daemon uses"
    )
    session_ttl_s: int = Field(12 * 3600, ge=60, le=30 * 86400, description="browser session lifetime")
    session_idle_s: int = Field(
        2 * 3600, ge=60, le=30 * 86400, description="a browser session unused this long ends"
    )
    login_free_failures: int = Field(
        5, ge=1, le=1000, description="failed logins per username before exponential backoff"
    )
    login_free_failures_per_ip: int = Field(
        20, ge=1, le=100_000, description="failed logins per client address before exponential backoff"
    )
    login_max_backoff_s: float = Field(900.0, ge=1, le=86400, description="longest login backoff")
    max_header_bytes: int = Field(
        32 * 1024, ge=4096, le=1024 * 1024, description="request headers larger than this get 431"
    )
    max_header_count: int = Field(100, ge=16, le=1000, description="more request headers than this get 431")
    body_read_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="a request body not fully received within this gets 408"
    )
    supervisor_lease: bool = Field(
        True,
        description="one daemon drives each model (a lease in the database, docs/reliability.md); "
        "false: every daemon sharing the database drives every model with engines of its own",
    )
    remote_engine_hosts: list[str] = Field(
        default_factory=list,
        description="hosts (or host:port) remote-engine recipes may point at; empty: none (engines/remote)",
    )
    log_max_bytes: int = Field(
        50 * 1024 * 1024, ge=64 * 1024, description="rotate the daemon's and engines' logs beyond this size"
    )
    log_backups: int = Field(
        3, ge=1, le=100, description="rotated log files kept per log (beyond the live one)"
    )

    @field_validator("model_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        for root in value:
            if not root.expanduser().is_absolute():
                raise ValueError(f"{str(root)!r} is not an absolute path; model_roots lists absolute folders")
        return [r.expanduser() for r in value]

    @field_validator("metrics_listen")
    @classmethod
    def _valid_listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9464)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)") from None
        return value

    # ---- derived paths -------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_FILE_NAME

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def usage_spool_file(self) -> Path:
        return self.home / "spool" / "usage.jsonl"

    @property
    def usage_journal_dir(self) -> Path:
        return self.home / "spool" / "journal"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin.token"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'cortex.db'}"

    @property
    def database_kind(self) -> str:
        return self.effective_database_url.split(":", 1)[0].split("+", 1)[0]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlFileSource(settings_cls, init_settings))


class YamlFileSource(PydanticBaseSettingsSource):
    """`$CORTEX_HOME/cortex.yaml`, where CORTEX_HOME comes from overrides or env."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        init = init_settings()
        home = Path(init["home"]) if init.get("home") else default_home()
        self.path = home / CONFIG_FILE_NAME
        self.doc: YamlDoc | None = None
        if self.path.is_file():
            try:
                self.doc = load_yaml_file(self.path)
            except YamlSyntaxError as exc:
                raise ConfigError(str(exc), fix=f"Fix the YAML syntax in {self.path}.") from None
            if self.doc.data is not None and not isinstance(self.doc.data, dict):
                raise ConfigError(
                    f"{self.path}:1: expected a mapping of settings",
                    fix="See the README's configuration section.",
                )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        data = (self.doc.data if self.doc else None) or {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        data = (self.doc.data if self.doc else None) or {}
        return dict(data)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into one ConfigError naming the source."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        home = Path(overrides["home"]) if overrides.get("home") else default_home()
        path = home / CONFIG_FILE_NAME
        doc = load_yaml_file(path) if path.is_file() else None
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            env_name = f"CORTEX_{name.upper()}"
            if name in overrides:
                where = f"option {name}"
            elif env_name in os.environ:
                where = f"environment variable {env_name}"
            elif doc is not None and isinstance(doc.data, dict) and name in doc.data:
                where = f"{path}:{doc.line_of(err['loc'])}: {'.'.join(map(str, err['loc']))}"
            else:
                where = name
            if err["type"] == "extra_forbidden":
                accepted = ", ".join(sorted(Settings.model_fields))
                problems.append(f"{where}: unknown setting; accepted: {accepted}")
            else:
                problems.append(f"{where}: {err['msg']}")
        raise ConfigError(
            "Invalid configuration: " + "; ".join(problems),
            fix=f"Fix the value in {path} or the environment, then retry.",
        ) from None


def redact_url(url: str) -> str:
    """A database/redis URL safe to print: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[-1]}"))
