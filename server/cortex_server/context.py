"""What the daemon holds for its lifetime; built in the lifespan, reached through deps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.auth import KeyAuthenticator
from cortexctl.core.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    secret: bytes
    authenticator: KeyAuthenticator
    started_at: float = field(default_factory=time.time)
