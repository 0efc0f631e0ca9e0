"""Chat playground history: a user's sessions and their messages.

Always filtered by (org, user): a session is private to the user who made it, whatever their
role, so another user's id answers 404 like a missing one. The service neither knows about HTTP
nor about engines; the router builds the upstream request from `history()`.
"""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from cortex_server.db.models import ChatMessage, ChatSession, utcnow
from cortexctl.core.errors import NotFound

TITLE_CHARS = 60


def _owned(session: Session, *, org_id: int, user_id: int, session_id: int) -> ChatSession:
    row = session.get(ChatSession, session_id)
    if row is None or row.org_id != org_id or row.user_id != user_id:
        raise NotFound(f"No chat session {session_id}.", fix="List yours with GET /api/chat/sessions.")
    return row


def list_sessions(
    session: Session, *, org_id: int, user_id: int, query: str | None = None, limit: int = 200
) -> list[ChatSession]:
    stmt = (
        select(ChatSession)
        .where(ChatSession.org_id == org_id, ChatSession.user_id == user_id)
        .order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
        .limit(limit)
    )
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        in_messages = select(ChatMessage.session_id).where(
            func.lower(ChatMessage.content).like(like, escape="\\")
        )
        stmt = stmt.where(
            or_(func.lower(ChatSession.title).like(like, escape="\\"), ChatSession.id.in_(in_messages))
        )
    return list(session.scalars(stmt))


def create_session(
    session: Session, *, org_id: int, user_id: int, model: str, title: str | None = None
) -> ChatSession:
    row = ChatSession(org_id=org_id, user_id=user_id, model=model, title=title or "New chat")
    session.add(row)
    session.flush()
    return row


def get_session(session: Session, *, org_id: int, user_id: int, session_id: int) -> ChatSession:
    return _owned(session, org_id=org_id, user_id=user_id, session_id=session_id)


def messages_of(session: Session, *, session_id: int) -> list[ChatMessage]:
    stmt = select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id)
    return list(session.scalars(stmt))


def update_session(
    session: Session, *, org_id: int, user_id: int, session_id: int, title: str | None, model: str | None
) -> ChatSession:
    row = _owned(session, org_id=org_id, user_id=user_id, session_id=session_id)
    if title is not None:
        row.title = title
    if model is not None:
        row.model = model
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_session(session: Session, *, org_id: int, user_id: int, session_id: int) -> None:
    row = _owned(session, org_id=org_id, user_id=user_id, session_id=session_id)
    session.execute(delete(ChatMessage).where(ChatMessage.session_id == row.id))
    session.delete(row)
    session.flush()


def add_message(session: Session, *, chat: ChatSession, role: str, content: str) -> ChatMessage:
    message = ChatMessage(session_id=chat.id, role=role, content=content)
    session.add(message)
    if role == "user" and chat.title == "New chat":
        text = " ".join(content.split())
        chat.title = text[:TITLE_CHARS] + ("…" if len(text) > TITLE_CHARS else "")
    chat.updated_at = utcnow()
    session.flush()
    return message


def history(messages: list[ChatMessage], *, system: str | None) -> list[dict[str, str]]:
    """The OpenAI `messages` for the next turn: the system prompt, then every stored turn."""
    out = [{"role": "system", "content": system}] if system else []
    out.extend({"role": m.role, "content": m.content} for m in messages if m.content)
    return out


def save_reply(session_factory: sessionmaker[Session], *, session_id: int, content: str) -> None:
    """Store the assistant's reply (what was streamed, even if the user stopped it)."""
    if not content:
        return
    with session_factory() as session:
        chat = session.get(ChatSession, session_id)
        if chat is None:  # deleted while it streamed
            return
        add_message(session, chat=chat, role="assistant", content=content)
        session.commit()
