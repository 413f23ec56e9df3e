"""Cancel a conversation's pending follow-ups (taking over does this too, in the same transaction).

Writes: followups.status = cancelled with the reason, an audit_log row, in one transaction.
Guard: UPDATE … WHERE status = 'pending': re-running cancels nothing more.

usage: python -m execution.cancel_followups --conversation 42 [--reason "customer bought elsewhere"]
"""

from __future__ import annotations

from execution.lib import cli, conversation_store, followup_store, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import NotFound


def cancel_followups(conn: Connection, *, conversation_id: int, actor: str, reason: str) -> dict:
    with transaction(conn):
        conversation = conversation_store.get_conversation(conn, conversation_id=conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        count = followup_store.cancel_followups(conn, conversation_id=conversation_id, reason=reason)
        tenant_store.insert_audit(conn, organization_id=conversation["organization_id"], actor=actor,
                           action="cancel_followups", entity="conversation", entity_id=conversation_id,
                           details={"cancelled": count, "reason": reason})
    return {"conversation_id": conversation_id, "cancelled": count}


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    p.add_argument("--reason", default="cli", help="why")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            return cancel_followups(conn, conversation_id=args.conversation, actor="cli", reason=args.reason)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
