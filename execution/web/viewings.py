"""Viewings for the logged-in agent: list, confirm, move, cancel; the calendar feed and its link."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from execution.calendar_feed import feed_for_token, new_token
from execution.change_viewing import cancel_viewing, confirm_viewing, reschedule_viewing
from execution.lib import conversation_store, tenant_store, viewing_store
from execution.lib.errors import BadRequest, NotFound
from execution.viewing_messages import parse_local
from execution.web.deps import CsrfAgent, CurrentAgent, ResourcesDep, SnapshotDep, get_providers

router = APIRouter(tags=["viewings"])


def shown(v: dict) -> dict:
    return {"id": v["id"], "conversation_id": v["conversation_id"], "reference": v["reference"],
            "project": v.get("project_name"), "starts_at": v["starts_at"].isoformat(),
            "ends_at": v["ends_at"].isoformat(), "status": v["status"], "booked_by": v["booked_by"].split(":")[0],
            "feedback": v.get("feedback"), "moved_to": v.get("moved_to")}


@router.get("/api/viewings")
def upcoming(res: ResourcesDep, agent: CurrentAgent, days_back: int = 1) -> dict:
    if not 0 <= days_back <= 90:
        raise BadRequest("days_back: 0 to 90")
    with res.db.connection() as conn:
        rows = viewing_store.viewings_for_agent(conn, agent_id=agent["agent_id"],
                                                since=datetime.now(timezone.utc) - timedelta(days=days_back))
    return {"viewings": [{**shown(v), "customer": v.get("customer_name")} for v in rows]}


@router.get("/api/conversations/{conversation_id}/viewings")
def for_conversation(conversation_id: int, res: ResourcesDep, agent: CurrentAgent) -> dict:
    with res.db.connection() as conn:
        if conversation_store.conversation_for_agent(conn, agent_id=agent["agent_id"],
                                                     conversation_id=conversation_id) is None:
            raise NotFound(f"no conversation {conversation_id}")
        rows = viewing_store.viewings_for_conversation(conn, agent_id=agent["agent_id"],
                                                       conversation_id=conversation_id)
    return {"viewings": [shown(v) for v in rows]}


class Move(BaseModel):
    starts_at: str = Field(max_length=40, description="YYYY-MM-DDTHH:MM in the agent's time zone")


class Cancel(BaseModel):
    reason: str | None = Field(default=None, max_length=300)


@router.post("/api/viewings/{viewing_id}/confirm")
def confirm(viewing_id: int, res: ResourcesDep, agent: CsrfAgent) -> dict:
    report = confirm_viewing(res.db, agent_id=agent["agent_id"], viewing_id=viewing_id,
                             actor=f"agent:{agent['agent_id']}")
    return {"outcome": report.outcome, "viewing_id": report.viewing_id}


@router.post("/api/viewings/{viewing_id}/move")
def move(viewing_id: int, body: Move, request: Request, res: ResourcesDep, snapshot: SnapshotDep,
         agent: CsrfAgent) -> dict:
    with res.db.connection() as conn:
        tz = viewing_store.viewing_agent(conn, agent_id=agent["agent_id"])["timezone"]
    report = reschedule_viewing(res.db, res.redis, get_providers(request), snapshot=snapshot,
                                agent_id=agent["agent_id"], viewing_id=viewing_id,
                                starts_at=parse_local(body.starts_at, tz), actor=f"agent:{agent['agent_id']}")
    return {"outcome": report.outcome, "viewing_id": report.viewing_id, "reason": report.reason,
            "alternatives": [s.isoformat() for s in report.alternatives]}


@router.post("/api/viewings/{viewing_id}/cancel")
def cancel(viewing_id: int, body: Cancel, request: Request, res: ResourcesDep, snapshot: SnapshotDep,
           agent: CsrfAgent) -> dict:
    report = cancel_viewing(res.db, res.redis, get_providers(request), snapshot=snapshot, agent_id=agent["agent_id"],
                            viewing_id=viewing_id, actor=f"agent:{agent['agent_id']}", reason=body.reason)
    return {"outcome": report.outcome, "viewing_id": report.viewing_id}


@router.post("/api/calendar/link")
def calendar_link(request: Request, res: ResourcesDep, agent: CsrfAgent) -> dict:
    """A new feed URL (the old one stops working); shown once."""
    with res.db.transaction() as conn:
        token = new_token(conn, agent_id=agent["agent_id"])
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor=f"inbox:{agent['agent_id']}",
                                  action="new_calendar_token", entity="agent", entity_id=agent["agent_id"])
    return {"feed_url": str(request.base_url).rstrip("/") + f"/calendar/{token}.ics"}


@router.delete("/api/calendar/link")
def calendar_revoke(res: ResourcesDep, agent: CsrfAgent) -> dict:
    with res.db.connection() as conn:
        viewing_store.set_calendar_token(conn, agent_id=agent["agent_id"], token_hash=None)
    return {"revoked": True}


@router.get("/calendar/{token}.ics", include_in_schema=False)
def calendar(token: str, res: ResourcesDep) -> Response:
    if not 20 <= len(token) <= 100:
        raise NotFound("no such calendar")
    with res.db.connection() as conn:
        text = feed_for_token(conn, token=token)
    return Response(text, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"})
