"""What the daemon holds for its lifetime; built in the lifespan, reached through deps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.auth import KeyAuthenticator
from cortex_server.core.sessions import SessionCodec
from cortex_server.services.gateway.admission import Admission
from cortex_server.services.gateway.proxy import Gateway
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.metering.writer import UsageWriter
from cortex_server.services.registry import ModelRegistry
from cortexctl.core.settings import Settings

if TYPE_CHECKING:
    from cortex_server.services.invalidation import AuthInvalidator
    from cortex_server.services.login_throttle import LoginGate, LoginThrottle
    from cortex_server.services.observability.daemon import Observability
    from cortex_server.services.observability.rejections import RejectionRecorder
    from cortex_server.services.ratelimit import RateLimiter
    from cortex_server.services.supervisor import Supervisor
    from cortex_server.workers import WorkerRole


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    secret: bytes
    authenticator: KeyAuthenticator
    sessions: SessionCodec
    rate_limiter: RateLimiter
    invalidator: AuthInvalidator
    # the gateway: registry (written by the supervisor), pooled engine clients, usage writer
    registry: ModelRegistry
    upstreams: UpstreamClients
    usage_writer: UsageWriter
    gateway: Gateway
    admission: Admission  # who may call /v1, within which limits; owns each request's lease
    login_throttle: LoginThrottle
    login_gate: LoginGate
    supervisor: Supervisor | None = None
    observability: Observability | None = None  # metrics registry, engine scrapes, GPUs
    rejections: RejectionRecorder | None = None  # 401/403/429 counts for usage analytics
    worker: WorkerRole | None = None  # one of `serve --workers N`; None: a lone daemon
    started_at: float = field(default_factory=time.time)

    def poke_supervisor(self, model_id: int, *, force: bool = False) -> None:
        if self.supervisor is not None:
            self.supervisor.request_start(model_id, force=force)
