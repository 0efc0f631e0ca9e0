"""SQLAlchemy 2.0 typed models. Schema changes go through a new Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

from cortex_server.services.lifecycle import DesiredState, State


def utcnow() -> datetime:
    return datetime.now(UTC)


MAX_ROW_ID = 2**31 - 1  # Integer primary keys (PostgreSQL int4)


def is_row_id(ident: str) -> bool:
    """Does this path identifier name a row by id? Digits that fit a row id; anything else is a name."""
    return ident.isascii() and ident.isdigit() and len(ident) <= 10 and int(ident) <= MAX_ROW_ID


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A StrEnum stored as its string: rows read back as the enum, never as a bare string."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value  # ValueError for a stray word

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # Org-wide limits (None = unlimited) and IP allowlist (empty = any address); migration 0002_access.
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    tpm_limit: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    allowed_ips: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default="member")  # owner | admin | member | viewer
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_api_keys_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(32))  # first characters, shown in listings
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    allowed_models: Mapped[list[str]] = mapped_column(default=list)
    allowed_ips: Mapped[list[str]] = mapped_column(default=list)
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    tpm_limit: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    # the key that minted this one (None: a session or bootstrap); keys:write keys manage only these
    created_by_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    """A browser session (migration 0004): the cookie names it, so logout and admins can end it."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the cookie's session id
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()  # absolute end
    revoked_at: Mapped[datetime | None] = mapped_column()
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))


class Recipe(Base):
    __tablename__ = "recipes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    engine: Mapped[str] = mapped_column(String(32))
    served_name: Mapped[str] = mapped_column(String(256))
    yaml_text: Mapped[str] = mapped_column(Text)  # exactly what the admin gave us
    source: Mapped[str | None] = mapped_column(String(1024))  # file it came from, if any
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Model(Base):
    """A deployment of a recipe: desired state plus the observed lifecycle state."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipes.id", ondelete="RESTRICT"), index=True)
    served_name: Mapped[str] = mapped_column(String(256), index=True)
    # Intent, written by admin calls; everything else about the state is the supervisor's.
    desired_state: Mapped[DesiredState] = mapped_column(
        StrEnumType(DesiredState), default=DesiredState.STOPPED
    )
    start_requested_at: Mapped[datetime | None] = mapped_column()  # clear failures, try again (0005)
    restart_requested_at: Mapped[datetime | None] = mapped_column()  # stop the replicas, start afresh
    state: Mapped[State] = mapped_column(StrEnumType(State), default=State.STOPPED)
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    diagnosis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Crash history (0006): kept across daemon restarts until the model is next started by hand.
    crash_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_exit_code: Mapped[int | None] = mapped_column(Integer)
    last_exit_signal: Mapped[int | None] = mapped_column(Integer)
    last_crash: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # diagnosis + matched log lines + at


class Installation(Base):
    """One row: this installation's id (it labels and names every engine it starts, so a daemon
    adopts or stops only its own) and whether the first admin password was ever shown."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[str] = mapped_column(String(32), unique=True)
    admin_password_shown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EnginePort(Base):
    """A port an engine holds: unique per host, so two starts never pick the same one."""

    __tablename__ = "engine_ports"
    __table_args__ = (UniqueConstraint("host", "port", name="uq_engine_ports_host_port"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    installation_id: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[int | None] = mapped_column(Integer)
    replica_index: Mapped[int | None] = mapped_column(Integer)
    allocated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelReplica(Base):
    """One engine process or container serving a model; the supervisor owns these rows."""

    __tablename__ = "model_replicas"
    __table_args__ = (UniqueConstraint("model_id", "replica_index", name="uq_model_replicas_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    replica_index: Mapped[int] = mapped_column(Integer)
    state: Mapped[State] = mapped_column(StrEnumType(State), default=State.STOPPED)
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    runtime: Mapped[str | None] = mapped_column(String(16))  # process | docker
    port: Mapped[int | None] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer)
    container_id: Mapped[str | None] = mapped_column(String(80))
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column()
    last_exit_code: Mapped[int | None] = mapped_column(Integer)
    diagnosis: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_org_created", "org_id", "created_at"),)  # 0003

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    org_id: Mapped[int | None] = mapped_column(Integer, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    api_key_id: Mapped[int | None] = mapped_column(Integer, index=True)
    model: Mapped[str] = mapped_column(String(256))
    replica: Mapped[str | None] = mapped_column(String(256))
    endpoint: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    status_code: Mapped[int] = mapped_column(Integer)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)


class UsageRejection(Base):
    """Requests refused before reaching an engine (401/403/429), counted per minute.

    Counts, not one row per request: a flood of bad keys must not become a flood of
    inserts. The daemon aggregates in memory (bounded) and appends a row per
    (minute, org, key, user, route, status, reason) it saw; readers SUM(count).
    Migration 0003_observability."""

    __tablename__ = "usage_rejections"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(index=True)  # the minute, UTC
    org_id: Mapped[int | None] = mapped_column(Integer)  # None: no principal was known (401)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(64))  # "inference" | "admin" | "other"
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)


HISTOGRAM_BUCKETS = 45  # usage_rollups latency/TTFT buckets: upper bounds 2^(i/2) ms, the last open


def _rollup_columns() -> list[Column[Any]]:
    measures = [
        Column(name, BigInteger, nullable=False, server_default="0")
        for name in (
            "requests", "ok", "errors_4xx", "errors_5xx", "cancelled",
            "prompt_tokens", "completion_tokens", "gen_tokens",
        )
    ]  # fmt: skip
    sums = [Column(name, Float, nullable=False, server_default="0") for name in ("latency_ms_sum", "gen_ms")]
    hist = [
        Column(f"{kind}_h{i}", Integer, nullable=False, server_default="0")
        for kind in ("lat", "ttft")
        for i in range(HISTOGRAM_BUCKETS)
    ]
    return measures + sums + hist


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        Base.metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("bucket_start", UTCDateTime(), nullable=False),  # the hour / the day (UTC)
        Column("org_id", Integer, nullable=False),
        Column("user_id", Integer, nullable=False),
        Column("api_key_id", Integer, nullable=False),
        Column("model", String(256), nullable=False),
        *_rollup_columns(),
        UniqueConstraint("bucket_start", "org_id", "user_id", "api_key_id", "model", name=f"uq_{name}_key"),
        Index(f"ix_{name}_org_start", "org_id", "bucket_start"),
    )


# Per hour / per day and (org, user, key, model): what analytics read for long ranges (see
# services/usage). Kept by the usage writer in the transaction that inserts the raw rows.
# Absent ids are 0, not NULL, so the unique key (and ON CONFLICT) works. Migration 0003.
usage_rollups_hourly = _rollup_table("usage_rollups_hourly")
usage_rollups_daily = _rollup_table("usage_rollups_daily")


class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(256), default="New chat")
    model: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    org_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(256))  # "user:admin", "key:cortexctl-local"
    action: Mapped[str] = mapped_column(String(64))  # "keys.create"
    target: Mapped[str | None] = mapped_column(String(256))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
