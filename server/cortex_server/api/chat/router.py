"""/api/chat/*: the playground's history and turns, for browser sessions only.

A turn (`POST …/messages`) stores the user's message, sends the whole conversation to the model
through the same gateway path as `/v1/chat/completions` (routing, metering under the user's
org, cancel on disconnect), streams the answer back and stores what was streamed.
"""

from __future__ import annotations

import asyncio
import math
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from cortex_server.api.chat.admission import ChatUser, admit_turn
from cortex_server.api.chat.stream import CapturedStream
from cortex_server.api.deps import ContextDep, SessionDep
from cortex_server.api.openai.chat.protocol import parse_chat_request
from cortex_server.db.models import ChatSession
from cortex_server.schemas.chat import (
    ChatModel,
    ChatSend,
    ChatSessionCreate,
    ChatSessionDetail,
    ChatSessionPublic,
    ChatSessionUpdate,
)
from cortex_server.services import chat
from cortex_server.services.gateway.admission import Ticket
from cortex_server.services.gateway.disconnect import unless_disconnected
from cortex_server.services.gateway.proxy import CHAT_COMPLETIONS
from cortexctl.core.errors import InvalidRequest, PermissionDenied

router = APIRouter(prefix="/api/chat", tags=["chat"])

# Sampling fields the playground may set; everything else a turn sends is ours.
SAMPLING = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "max_tokens",
        "presence_penalty",
        "frequency_penalty",
        "repeat_penalty",
        "seed",
        "stop",
    }
)


def _owner(principal: Any) -> dict[str, int]:
    return {"org_id": principal.org_id, "user_id": principal.user_id}


@router.get("/models", response_model=list[ChatModel])
def list_models(principal: ChatUser, ctx: ContextDep) -> list[ChatModel]:
    """Models this user may chat with; `ready` ones have a healthy replica now."""
    return [
        ChatModel(
            name=m.served_name,
            engine=m.engine,
            state=m.state,
            ready=bool(m.healthy_replicas()),
            context_length=m.max_model_len,
            request_defaults=dict(m.request_defaults),
        )
        for m in ctx.registry.all()
        if principal.model_allowed(m.served_name)
    ]


@router.get("/sessions", response_model=list[ChatSessionPublic])
def list_sessions(
    principal: ChatUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200, description="search titles and messages")] = None,
) -> list[ChatSession]:
    return chat.list_sessions(session, **_owner(principal), query=q)


@router.post("/sessions", response_model=ChatSessionPublic, status_code=201)
def create_session(body: ChatSessionCreate, principal: ChatUser, session: SessionDep) -> ChatSession:
    row = chat.create_session(session, **_owner(principal), model=body.model, title=body.title)
    session.commit()
    return row


@router.get("/sessions/{session_id}", response_model=ChatSessionDetail)
def show_session(session_id: int, principal: ChatUser, session: SessionDep) -> ChatSessionDetail:
    row = chat.get_session(session, **_owner(principal), session_id=session_id)
    messages = chat.messages_of(session, session_id=row.id)
    return ChatSessionDetail(
        **ChatSessionPublic.model_validate(row).model_dump(),
        messages=[m for m in messages],
    )


@router.patch("/sessions/{session_id}", response_model=ChatSessionPublic)
def update_session(
    session_id: int, body: ChatSessionUpdate, principal: ChatUser, session: SessionDep
) -> ChatSession:
    row = chat.update_session(
        session, **_owner(principal), session_id=session_id, title=body.title, model=body.model
    )
    session.commit()
    return row


@router.delete("/sessions/{session_id}", status_code=204)
def delete_session(session_id: int, principal: ChatUser, session: SessionDep) -> None:
    chat.delete_session(session, **_owner(principal), session_id=session_id)
    session.commit()


def _sampling(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - SAMPLING)
    if unknown:
        raise InvalidRequest(
            f"Unknown sampling parameter(s): {', '.join(unknown)}.",
            fix=f"Use only: {', '.join(sorted(SAMPLING))}.",
            param="params",
        )
    return {k: v for k, v in params.items() if v is not None}


@router.post("/sessions/{session_id}/messages", response_class=Response)
async def send_message(
    session_id: int,
    body: ChatSend,
    request: Request,
    principal: ChatUser,
    ctx: ContextDep,
) -> Response:
    """One turn, answered as an OpenAI chat-completion SSE stream."""
    sampling = _sampling(body.params)

    def load() -> tuple[str, list[dict[str, str]]]:
        with ctx.session_factory() as db:
            row = chat.get_session(db, **_owner(principal), session_id=session_id)
            model = body.model or row.model
            if not principal.model_allowed(model):
                raise PermissionDenied(f"You may not use the model {model!r}.", code="model_not_allowed")
            ctx.registry.require(model)  # 404 naming how to list models, before anything is stored
            history = chat.history(chat.messages_of(db, session_id=row.id), system=body.system)
            return model, [*history, {"role": "user", "content": body.content}]

    def store(model: str) -> None:
        with ctx.session_factory() as db:
            row = chat.get_session(db, **_owner(principal), session_id=session_id)
            row.model = model
            chat.add_message(db, chat=row, role="user", content=body.content)
            db.commit()

    model, messages = await run_in_threadpool(load)
    payload = parse_chat_request(
        {
            **sampling,
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},  # the playground shows the real token counts
        }
    )
    raw = orjson.dumps(payload)
    budget = sampling.get("max_tokens")
    estimate = math.ceil(len(raw) / 4) + (budget if isinstance(budget, int) and budget > 0 else 0)
    ticket = await admit_turn(request, principal, estimate=estimate)  # before anything is stored
    loop = asyncio.get_running_loop()

    def on_done(text: str) -> asyncio.Future[None]:
        # in a worker thread: it completes even if this task is being cancelled
        save = partial(chat.save_reply, ctx.session_factory, session_id=session_id, content=text)
        return loop.run_in_executor(None, save)

    async def work(t: Ticket) -> Response:
        await run_in_threadpool(store, model)
        inner = await unless_disconnected(
            request,
            ctx.gateway.forward(
                endpoint=CHAT_COMPLETIONS,
                payload=payload,
                raw=raw,
                principal=principal,
                on_usage=t.record_usage,
                request_id=t.request_id,
            ),
        )
        return CapturedStream(inner, on_done=on_done)

    return await ctx.admission.serve(ticket, work)
