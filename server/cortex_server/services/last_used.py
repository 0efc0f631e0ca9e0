"""Write API keys' last-used times in batches, off the request path."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.core.auth import KeyAuthenticator
from cortex_server.db.models import ApiKey

log = logging.getLogger(__name__)


def flush_last_used(*, authenticator: KeyAuthenticator, session_factory: sessionmaker[Session]) -> int:
    """One UPDATE per key used since the last flush (blocking); returns how many."""
    pending, authenticator.last_used = authenticator.last_used, {}
    if not pending:
        return 0
    try:
        with session_factory() as session:
            for key_id, ts in pending.items():
                when = datetime.fromtimestamp(ts, UTC)
                session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
            session.commit()
    except SQLAlchemyError as exc:
        log.warning("could not record key last-used times (%s); will retry", type(exc).__name__)
        for key_id, ts in pending.items():
            authenticator.last_used.setdefault(key_id, ts)
        return 0
    return len(pending)


async def run_last_used_writer(
    *, authenticator: KeyAuthenticator, session_factory: sessionmaker[Session], interval_s: float = 10.0
) -> None:
    try:
        while True:
            await asyncio.sleep(interval_s)
            await asyncio.to_thread(
                flush_last_used, authenticator=authenticator, session_factory=session_factory
            )
    finally:
        flush_last_used(authenticator=authenticator, session_factory=session_factory)
