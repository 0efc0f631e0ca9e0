"""Which daemon supervises which model: one lease per model, so that several daemons sharing one
database never drive (start, restart, stop, write the state of) the same model twice.

PostgreSQL: a session-level advisory lock per model (`pg_try_advisory_lock(NAMESPACE, model_id)`)
on one dedicated connection. The lease lasts as long as that session: it is "renewed" by a
liveness query every supervisor tick, and when its holder dies (SIGKILL, host gone, network cut)
PostgreSQL ends the session and frees the lock, so another daemon takes the model over on its
next tick. A holder whose connection fails drops every lease at once and stops driving (it never
stops engines: the new holder adopts or probes them). No table, no migration.

SQLite (one host): an exclusive `flock` on a file beside the database: the first daemon
supervises every model; another one takes over when that process dies (the kernel frees it).

A daemon routes to models it does not supervise only where it can reach them itself
(`followed_models`): engines with their own runtime (engines/remote) whose endpoint it can
compute from the recipe. Local engines listen on 127.0.0.1 with a key only their supervisor
holds, so they are served by the daemon that supervises them.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from cortex_server.services.models import ModelWithRecipe
    from cortex_server.services.registry import ServedModel
    from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = 0x0C07E5  # first key of the two-int advisory lock: "CORTEX supervisor"


class LeaseUnavailable(Exception):
    """The lease store cannot be reached: this daemon holds nothing now, and knows nothing of the
    others. The supervisor's tick fails (nothing is driven, the routing registry stays as it was)."""


class Leases(Protocol):
    def refresh(self, model_ids: Iterable[int]) -> set[int]:
        """Take what is free among `model_ids`, keep what is held; the ids this daemon now holds."""
        ...

    def close(self) -> None: ...


@dataclass
class PostgresLeases:
    engine: Engine
    held: set[int] = field(default_factory=set)
    _conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def refresh(self, model_ids: Iterable[int]) -> set[int]:
        wanted = set(model_ids)
        try:
            conn = self._connection()
            conn.execute(text("SELECT 1"))  # the renewal: our session, hence our locks, still live
            for model_id in sorted(wanted - self.held):
                if conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": NAMESPACE, "id": model_id}
                ).scalar():
                    log.info("supervising model %s (lease taken)", model_id)
                    self.held.add(model_id)
            for model_id in sorted(self.held - wanted):  # the model was deleted
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": NAMESPACE, "id": model_id})
                self.held.discard(model_id)
        except Exception as exc:  # noqa: BLE001 - any failure: the session (and every lock) may be gone
            if self.held:
                log.error("lost the supervisor leases of models %s: %s", sorted(self.held), exc)
            self.held = set()
            self._drop_connection()
            raise LeaseUnavailable(f"supervisor leases unavailable: {exc}") from exc
        return set(self.held)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 - it is already broken
                pass

    def close(self) -> None:
        self.held = set()
        self._drop_connection()  # ending the session frees the locks


@dataclass
class FileLease:
    """One lease for every model: an exclusive flock (SQLite: one host, one database file)."""

    path: Path
    _fd: int | None = None

    def refresh(self, model_ids: Iterable[int]) -> set[int]:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return set()
            log.info("supervising every model (lease %s taken)", self.path)
            self._fd = fd
        return set(model_ids)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def leases_for(settings: Settings, session_factory: sessionmaker[Session]) -> Leases:
    engine = session_factory.kw["bind"]
    assert isinstance(engine, Engine)
    if engine.dialect.name == "postgresql":
        return PostgresLeases(engine=engine)
    database = engine.url.database
    if database and database != ":memory:":
        return FileLease(Path(database).with_name(Path(database).name + ".supervisor.lock"))
    return FileLease(settings.run_dir / "supervisor.lock")


def followed_models(entries: Iterable[ModelWithRecipe], settings: Settings) -> list[ServedModel]:
    """Routing for models another daemon supervises, where this daemon can reach their replicas
    itself: engines that bring their own runtime (the endpoint follows from the recipe). The
    state is the supervisor's, from the database."""
    from cortex_server.services.lifecycle import State
    from cortex_server.services.registry import ReplicaEndpoint, ServedModel
    from cortexctl.core.errors import CortexError
    from cortexctl.engines.registry import get_engine

    out: list[ServedModel] = []
    for entry in entries:
        spec = entry.recipe.spec
        engine = get_engine(spec.engine)
        own_runtime: Any = getattr(engine, "runtime", None)
        sm = ServedModel(
            served_name=spec.served_name,
            engine=spec.engine,
            state=entry.model.state,
            request_defaults=spec.request_defaults.as_body(),
            request_timeout_s=spec.timeouts.request_s,
            connect_timeout_s=spec.timeouts.connect_s,
            created=int(entry.model.created_at.timestamp()),
            recipe=entry.recipe.name,
            serves_embeddings=spec.engine_args().serves_embeddings(),
            embeddings_setting=type(spec.engine_args()).EMBEDDINGS_SETTING,
            upstream_model=spec.engine_args().upstream_model(),
        )
        for row in entry.replicas:
            if own_runtime is None or row.state != State.RUNNING:
                continue
            try:
                launch = engine.launch_spec(
                    entry.recipe,
                    model_id=entry.model.id,
                    replica_index=row.replica_index,
                    port=0,
                    settings=settings,
                )
            except CortexError as exc:
                log.warning(
                    "cannot route to %s replica %s: %s", entry.model.name, row.replica_index, exc.message
                )
                continue
            handle = own_runtime(settings).start(launch)  # launches nothing: it names the endpoint
            sm.replicas.append(
                ReplicaEndpoint(
                    model_id=entry.model.id,
                    model_name=entry.model.name,
                    replica_index=row.replica_index,
                    base_url=handle.base_url,
                    healthy=True,
                    api_key=handle.api_key,
                )
            )
        out.append(sm)
    return out
