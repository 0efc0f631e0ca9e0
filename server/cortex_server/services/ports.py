"""Engine ports, held in the database: unique per host (a unique constraint), released on stop.

"Free right now" alone let two starts (two workers, two daemons on one DB) pick the same port
between the check and the engine's bind; a row per held port closes that race. A port is
taken only when the DB has no row for it AND nothing listens on it (another installation, with
its own DB, may hold it).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.db.models import EnginePort
from cortexctl.core.errors import EngineError


def this_host() -> str:
    return socket.gethostname()[:255] or "localhost"


class PortAllocator:
    def __init__(
        self,
        port_range: tuple[int, int],
        *,
        is_free: Callable[[int], bool],
        session_factory: sessionmaker[Session],
        installation_id: str,
        host: str | None = None,
    ) -> None:
        self._low, self._high = port_range
        self._is_free = is_free
        self._sessions = session_factory
        self._installation = installation_id
        self._host = host or this_host()

    def allocate(self, *, model_id: int, replica_index: int) -> int:
        """The lowest port in range that no row holds and nothing listens on; its row is written."""
        with self._sessions() as session:
            held = set(session.scalars(select(EnginePort.port).where(EnginePort.host == self._host)))
        for port in range(self._low, self._high + 1):
            if port in held or not self._is_free(port):
                continue
            if self._claim(port, model_id=model_id, replica_index=replica_index):
                return port
        raise EngineError(
            f"No free engine port in {self._low}-{self._high}.",
            fix="Stop unused models or widen CORTEX_ENGINE_PORT_RANGE.",
        )

    def hold(self, port: int, *, model_id: int, replica_index: int) -> None:
        """Record a port an adopted engine already holds (no-op if this installation has it)."""
        with self._sessions() as session:
            row = session.scalar(
                select(EnginePort).where(EnginePort.host == self._host, EnginePort.port == port)
            )
        if row is None:
            self._claim(port, model_id=model_id, replica_index=replica_index)

    def release(self, port: int) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                delete(EnginePort).where(
                    EnginePort.host == self._host,
                    EnginePort.port == port,
                    EnginePort.installation_id == self._installation,
                )
            )

    def release_all_but(self, kept: set[int]) -> None:
        """On start: rows of engines that are gone (this installation's, on this host) are freed."""
        with self._sessions() as session, session.begin():
            session.execute(
                delete(EnginePort).where(
                    EnginePort.host == self._host,
                    EnginePort.installation_id == self._installation,
                    EnginePort.port.not_in(kept) if kept else EnginePort.port.is_not(None),
                )
            )

    def _claim(self, port: int, *, model_id: int, replica_index: int) -> bool:
        try:
            with self._sessions() as session, session.begin():
                session.add(
                    EnginePort(
                        host=self._host,
                        port=port,
                        installation_id=self._installation,
                        model_id=model_id,
                        replica_index=replica_index,
                    )
                )
        except IntegrityError:  # another start took it between our read and our write
            return False
        return True
