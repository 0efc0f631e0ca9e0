"""What the daemon holds for its lifetime; built in the lifespan, reached through deps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.auth import KeyAuthenticator
from cortex_server.services.gateway.proxy import Gateway
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.metering.writer import UsageWriter
from cortex_server.services.registry import ModelRegistry
from cortexctl.core.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    secret: bytes
    authenticator: KeyAuthenticator
    # the gateway: registry (written by the supervisor), pooled engine clients, usage writer
    registry: ModelRegistry
    upstreams: UpstreamClients
    usage_writer: UsageWriter
    gateway: Gateway
    started_at: float = field(default_factory=time.time)
