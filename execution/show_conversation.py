"""One conversation as the inbox shows it: the thread with authors, delivery and how AI replies were
written, the mode timeline, suppressed drafts, the lead details, the listings shown, escalations.

Reads: only a conversation the viewer may see (NotFound otherwise, the same as for a missing one).
Writes with `--read`: unread_count = 0.

usage: python -m execution.show_conversation --agent sara@nile-homes.example --conversation 42 [--read]
"""

from __future__ import annotations

from execution.lib import cli, followup_store, formatting, inbox_store, property_store, tenant_store, viewing_store
from execution.lib.db import Database
from execution.lib.errors import NotFound
from execution.list_conversations import viewer_for


def visible(conn, viewer: dict, conversation_id: int) -> dict:
    row = inbox_store.conversation(conn, viewer=viewer, conversation_id=conversation_id)
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return row


def show_conversation(db: Database, *, viewer: dict, conversation_id: int, limit: int = 300) -> dict:
    with db.connection() as conn:
        c = visible(conn, viewer, conversation_id)
        messages = inbox_store.thread(conn, conversation_id=c["id"], limit=limit)
        refs = inbox_store.shown_references(conn, conversation_id=c["id"])
        listings = [p for ref in refs if (p := property_store.get_property(conn, agent_id=c["agent_id"], reference=ref))]
        escalations = inbox_store.escalations(conn, conversation_id=c["id"])
        viewings = viewing_store.viewings_for_conversation(conn, agent_id=c["agent_id"], conversation_id=c["id"])
        tasks = followup_store.agent_tasks(conn, conversation_id=c["id"])
    return {
        "conversation": {k: c[k] for k in ("id", "title", "phone", "mode", "mode_version", "mode_reason", "unread",
                                           "needs_attention", "lead", "preferences")},
        "messages": [{**{k: m[k] for k in ("id", "author", "direction", "message_type", "body", "media",
                                           "delivery_status", "status_detail", "created_at", "generation")},
                      "resendable": bool(m["resendable"]) and m["author"] in ("agent", "ai")} for m in messages],
        "listings": [{"reference": p["reference"], "project_name": p.get("project_name"),
                      "property_type": p["property_type"], "listing_type": p["listing_type"],
                      "district": p.get("district"), "status": p["status"],
                      "price_text": formatting.format_price(p["price"], p["currency"], lang="en",
                                                            listing_type=p["listing_type"])} for p in listings],
        "escalations": escalations,
        "viewings": [{"id": v["id"], "reference": v["reference"], "starts_at": v["starts_at"].isoformat(),
                      "status": v["status"], "feedback": v["feedback"]} for v in viewings],
        "tasks": [{"id": t["id"], "kind": t["kind"], "created_at": t["created_at"].isoformat()} for t in tasks],
    }


def finish_task(db: Database, *, viewer: dict, conversation_id: int, task_id: int) -> dict:
    """The agent did what a reply promised (or looked at a flag): off the conversation's to-do list."""
    with db.transaction() as conn:
        c = visible(conn, viewer, conversation_id)
        if not followup_store.finish_agent_task(conn, conversation_id=c["id"], task_id=task_id):
            raise NotFound(f"no open task {task_id} in this conversation")
        tenant_store.insert_audit(conn, organization_id=c["organization_id"], actor=f"inbox:{viewer['agent_id']}",
                                  action="finish_task", entity="followup", entity_id=task_id)
    return {"done": task_id}


def mark_read(db: Database, *, viewer: dict, conversation_id: int) -> dict:
    with db.connection() as conn:
        c = visible(conn, viewer, conversation_id)
        inbox_store.mark_read(conn, conversation_id=c["id"])
    return {}


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    p.add_argument("--conversation", type=int, required=True)
    p.add_argument("--read", action="store_true", help="mark it read")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            viewer = viewer_for(conn, args.agent)
        if args.read:
            mark_read(res.db, viewer=viewer, conversation_id=args.conversation)
        return show_conversation(res.db, viewer=viewer, conversation_id=args.conversation)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
