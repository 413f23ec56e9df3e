"""Hand a conversation to the human agent: the AI stops speaking at once.

Writes: conversations.mode = HUMAN and mode_version + 1 (a scheduled reply dropped), pending
followups cancelled (ai_human_toggle_logic.takeover_cancels_followups), a mode_change timeline
message, an audit_log row, all in one transaction. Any AI send not yet handed to the provider is
refused by the send fence (send_whatsapp_message) after this commits.
Guard: the conversation row (UPDATE ... WHERE mode <> 'HUMAN'); re-running changes nothing.

usage: python -m execution.set_mode_human --conversation 42 --reason "VIP"
"""

from __future__ import annotations

from execution.lib import cli
from execution.lib.db import Connection
from execution.lib.directives import Snapshot, load_directives
from execution.lib.modes import ModeChange, apply_mode_change


def set_mode_human(conn: Connection, *, snapshot: Snapshot, conversation_id: int, actor: str,
                   reason: str) -> ModeChange:
    """Take the conversation from the assistant; the only way any part of the product does so."""
    toggle = snapshot["ai_human_toggle_logic"]
    return apply_mode_change(conn, conversation_id=conversation_id, mode="HUMAN", actor=actor, reason=reason,
                             cancel_followups=toggle["takeover_cancels_followups"])


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    p.add_argument("--reason", default="cli", help="why (shown in the inbox timeline)")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            return set_mode_human(conn, snapshot=load_directives(), conversation_id=args.conversation, actor="cli",
                                  reason=args.reason)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
