"""The conversation list, one thread, and what the agent does in it: take over or hand back, reply,
send a draft, resend, resolve an escalation, mark read. Every route acts for the logged-in agent."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from execution.list_conversations import list_conversations
from execution.reply_as_agent import reply_as_agent, send_again
from execution.resolve_escalation import resolve_escalation
from execution.set_mode_ai import set_mode_ai
from execution.set_mode_human import set_mode_human
from execution.show_conversation import finish_task, mark_read, show_conversation, visible
from execution.web.deps import CsrfAgent, CurrentAgent, ResourcesDep, SnapshotDep, plain

router = APIRouter(prefix="/api/conversations", tags=["conversations"])


class ModeBody(BaseModel):
    mode: Literal["AI", "HUMAN"]
    brief: str | None = Field(default=None, max_length=4000)


class ReplyBody(BaseModel):
    text: str = Field(max_length=4096)
    client_id: str = Field(min_length=8, max_length=64)


class AgainBody(BaseModel):
    client_id: str = Field(min_length=8, max_length=64)


@router.get("")
def conversations(res: ResourcesDep, agent: CurrentAgent, filter: str = "all", q: str | None = None,
                  before: str | None = None, limit: int = 30) -> dict:
    return list_conversations(res.db, viewer=agent, filter=plain(filter, "filter"), q=plain(q, "q"),
                              before=plain(before, "before"), limit=limit)


@router.get("/{conversation_id}")
def conversation(conversation_id: int, res: ResourcesDep, agent: CurrentAgent) -> dict:
    return show_conversation(res.db, viewer=agent, conversation_id=conversation_id)


@router.post("/{conversation_id}/mode")
def change_mode(conversation_id: int, body: ModeBody, res: ResourcesDep, snapshot: SnapshotDep,
                agent: CsrfAgent) -> dict:
    actor = f"inbox:{agent['agent_id']}"
    with res.db.connection() as conn:
        c = visible(conn, agent, conversation_id)
        if body.mode == "HUMAN":
            change = set_mode_human(conn, snapshot=snapshot, conversation_id=c["id"], actor=actor, reason="inbox")
        else:
            change = set_mode_ai(conn, snapshot=snapshot, conversation_id=c["id"], actor=actor, reason="inbox",
                                 brief=body.brief)
    return {"mode": change.mode, "mode_version": change.mode_version, "changed": change.changed}


@router.post("/{conversation_id}/messages")
def reply(conversation_id: int, body: ReplyBody, request: Request, res: ResourcesDep, snapshot: SnapshotDep,
          agent: CsrfAgent) -> dict:
    return reply_as_agent(res.db, res.redis, request.app.state.providers, snapshot=snapshot, viewer=agent,
                          conversation_id=conversation_id, text=body.text, client_id=body.client_id)


@router.post("/{conversation_id}/drafts/{message_id}/send")
def send_draft(conversation_id: int, message_id: int, body: AgainBody, request: Request, res: ResourcesDep,
               snapshot: SnapshotDep, agent: CsrfAgent) -> dict:
    return send_again(res.db, res.redis, request.app.state.providers, snapshot=snapshot, viewer=agent,
                      conversation_id=conversation_id, message_id=message_id, client_id=body.client_id, kind="draft")


@router.post("/{conversation_id}/messages/{message_id}/resend")
def resend(conversation_id: int, message_id: int, body: AgainBody, request: Request, res: ResourcesDep,
           snapshot: SnapshotDep, agent: CsrfAgent) -> dict:
    return send_again(res.db, res.redis, request.app.state.providers, snapshot=snapshot, viewer=agent,
                      conversation_id=conversation_id, message_id=message_id, client_id=body.client_id, kind="resend")


@router.post("/{conversation_id}/escalations/resolve")
def resolve(conversation_id: int, res: ResourcesDep, agent: CsrfAgent) -> dict:
    return resolve_escalation(res.db, viewer=agent, conversation_id=conversation_id,
                              actor=f"inbox:{agent['agent_id']}")


@router.post("/{conversation_id}/read")
def read(conversation_id: int, res: ResourcesDep, agent: CsrfAgent) -> dict:
    return mark_read(res.db, viewer=agent, conversation_id=conversation_id)


@router.post("/{conversation_id}/tasks/{task_id}/done")
def task_done(conversation_id: int, task_id: int, res: ResourcesDep, agent: CsrfAgent) -> dict:
    return finish_task(res.db, viewer=agent, conversation_id=conversation_id, task_id=task_id)
