"""The agent's conversation list: mode, unread, last message, open escalation, newest activity first.

Reads: conversations, contacts, messages, escalations, only the viewer's (the agent's own, or the
organization's for an admin). Filters: all | ai | human | needs_reply | escalated; search by name,
phone or any message text (Arabic normalised as listing search is). Paged by an opaque cursor.
Writes nothing.

usage: python -m execution.list_conversations --agent sara@nile-homes.example [--filter escalated] [--q "maadi"]
"""

from __future__ import annotations

from execution.lib import cli, inbox_store
from execution.lib.db import Database
from execution.lib.errors import BadRequest

MAX_LIMIT = 100


def list_conversations(db: Database, *, viewer: dict, filter: str = "all", q: str | None = None,
                       before: str | None = None, limit: int = 30) -> dict:
    if filter not in inbox_store.FILTERS:
        raise BadRequest(f"filter must be one of {', '.join(inbox_store.FILTERS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    if q is not None and len(q) > 200:
        raise BadRequest("q: at most 200 characters")
    try:
        cursor = inbox_store.decode_cursor(before) if before else None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("before: not a cursor this list gave") from None
    with db.connection() as conn:
        rows = inbox_store.list_conversations(conn, viewer=viewer, filter=filter, q=(q or "").strip() or None,
                                              before=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "conversations": [{
            "id": r["id"], "title": r["title"], "phone": r["phone"], "mode": r["mode"], "unread": r["unread"],
            "needs_attention": r["needs_attention"], "last_message_at": r["last_message_at"],
            "last_message": None if r["lm_at"] is None else {
                "author": r["lm_author"], "body": r["lm_body"], "message_type": r["lm_type"], "created_at": r["lm_at"]},
            "escalation": None if r["e_id"] is None else {
                "id": r["e_id"], "category": r["e_category"], "rule": r["e_rule"], "reason": r["e_reason"],
                "created_at": r["e_at"]},
        } for r in rows],
        "next": inbox_store.encode_cursor(rows[-1]["last_message_at"], rows[-1]["id"]) if more else None,
    }


def viewer_for(conn, email: str) -> dict:
    """The viewer an operator acts as at a shell (`--agent EMAIL`)."""
    from execution.lib.errors import NotFound

    with conn.cursor() as cur:
        cur.execute("SELECT id AS agent_id, organization_id, role, name, language FROM agents WHERE email = %s",
                    (email.strip().lower(),))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no agent {email}")
    return row


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    p.add_argument("--filter", default="all", choices=tuple(inbox_store.FILTERS))
    p.add_argument("--q", default=None, help="search names, phones and message text")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--before", default=None, help="the `next` cursor of the previous page")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            viewer = viewer_for(conn, args.agent)
        return list_conversations(res.db, viewer=viewer, filter=args.filter, q=args.q, before=args.before,
                                  limit=args.limit)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
