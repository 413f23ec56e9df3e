"""The agent has dealt with what the customer needed: close the conversation's open escalations.

Reads: a conversation the viewer may see. Writes: escalations.status = 'resolved', needs_attention
cleared, audit_log. The mode is left as it is (hand back to the AI separately, with a brief).

usage: python -m execution.resolve_escalation --agent sara@nile-homes.example --conversation 42
"""

from __future__ import annotations

from execution.lib import cli, escalation_store, tenant_store
from execution.lib.db import Database
from execution.list_conversations import viewer_for
from execution.show_conversation import visible


def resolve_escalation(db: Database, *, viewer: dict, conversation_id: int, actor: str) -> dict:
    with db.transaction() as conn:
        c = visible(conn, viewer, conversation_id)
        resolved = escalation_store.resolve_escalations(conn, conversation_id=c["id"])
        tenant_store.insert_audit(conn, organization_id=c["organization_id"], actor=actor,
                                  action="resolve_escalation", entity="conversation", entity_id=c["id"],
                                  details={"resolved": resolved})
    return {"resolved": resolved}


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    p.add_argument("--conversation", type=int, required=True)
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            viewer = viewer_for(conn, args.agent)
        return resolve_escalation(res.db, viewer=viewer, conversation_id=args.conversation, actor="cli")

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
