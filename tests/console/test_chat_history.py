"""Chat history service on SQLite and PostgreSQL, and the stream collector that stores replies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.api.chat.stream import DeltaCollector
from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.db.models import Organization, User
from cortex_server.services import chat
from cortex_server.services.prepare import prepare_database
from cortexctl.core.errors import NotFound
from cortexctl.core.settings import load_settings


@pytest.fixture
def db(cortex_home: Path, database_url: str) -> Iterator[Session]:
    settings = load_settings(home=cortex_home, database_url=database_url)
    prepare_database(settings)
    engine = make_engine(settings.effective_database_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def _owner(session: Session) -> dict[str, int]:
    user = session.scalars(select(User)).first()
    assert user is not None
    return {"org_id": user.org_id, "user_id": user.id}


def test_history_is_per_user_searchable_and_titled(db: Session) -> None:
    me = _owner(db)
    other_org = Organization(name="other")
    db.add(other_org)
    db.flush()
    stranger = User(org_id=other_org.id, username="stranger", password_hash="x", role="admin")
    db.add(stranger)
    db.flush()
    them = {"org_id": other_org.id, "user_id": stranger.id}

    a = chat.create_session(db, **me, model="m")
    chat.add_message(db, chat=a, role="user", content="How do 100% and under_score match?  " + "x" * 80)
    chat.add_message(db, chat=a, role="assistant", content="Lighthouses guide ships.")
    b = chat.create_session(db, **me, model="m", title="Plain title")
    theirs = chat.create_session(db, **them, model="m", title="100% theirs")
    db.commit()

    assert a.title.startswith("How do 100% and under_score match?") and a.title.endswith("…")
    assert len(a.title) == chat.TITLE_CHARS + 1
    assert {s.id for s in chat.list_sessions(db, **me)} == {a.id, b.id}
    # LIKE wildcards in the query are literal characters, and messages are searched too
    assert [s.id for s in chat.list_sessions(db, **me, query="100%")] == [a.id]
    assert [s.id for s in chat.list_sessions(db, **me, query="under_score")] == [a.id]
    assert chat.list_sessions(db, **me, query="under%score") == []
    assert [s.id for s in chat.list_sessions(db, **me, query="LIGHTHOUSE")] == [a.id]
    assert [s.id for s in chat.list_sessions(db, **me, query="plain")] == [b.id]
    assert [s.id for s in chat.list_sessions(db, **them, query="100%")] == [theirs.id]

    for call in (
        lambda: chat.get_session(db, **me, session_id=theirs.id),
        lambda: chat.update_session(db, **me, session_id=theirs.id, title="x", model=None),
        lambda: chat.delete_session(db, **me, session_id=theirs.id),
        lambda: chat.get_session(db, **me, session_id=999_999),
    ):
        with pytest.raises(NotFound):
            call()

    history = chat.history(chat.messages_of(db, session_id=a.id), system="Be brief.")
    assert [m["role"] for m in history] == ["system", "user", "assistant"]
    chat.delete_session(db, **me, session_id=a.id)
    db.commit()
    assert chat.messages_of(db, session_id=a.id) == []


def _event(text: str) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}) + b"\n\n"


def test_the_collector_reads_the_same_text_however_the_stream_is_cut() -> None:
    parts = ["Hel", "lo, ", "wörld ", "🙂", "\n```py\nx = 1\n```"]
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}\n\n'
        + b"".join(_event(p) for p in parts)
        + b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}\n\n'
        + b'data: {"error":{"message":"not a delta"}}\n\n'
        + b"data: [DONE]\n\n"
    )
    rng = random.Random(13)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(0, 12)))
        collector = DeltaCollector()
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            collector.feed(stream[start:end])
        collector.close()
        assert collector.text == "".join(parts), cuts
    crlf = DeltaCollector()
    crlf.feed(stream.replace(b"\n", b"\r\n"))
    crlf.close()
    assert crlf.text == "".join(parts)
