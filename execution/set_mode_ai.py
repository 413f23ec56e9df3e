"""Hand a conversation back to the AI, optionally with a brief the AI will see.

Writes: conversations.mode = AI and mode_version + 1, a mode_change timeline message
(carrying the brief, cut to ai_human_toggle_logic.brief_max_chars), open escalations resolved and
the inbox flag cleared, an audit_log row, all in one transaction.
Guard: the conversation row (UPDATE ... WHERE mode <> 'AI'); re-running changes nothing.

usage: python -m execution.set_mode_ai --conversation 42 [--brief "offered 5% off, waiting on answer"]
"""

from __future__ import annotations

from execution.lib import cli
from execution.lib.db import Connection
from execution.lib.directives import Snapshot, load_directives
from execution.lib.modes import ModeChange, apply_mode_change


def set_mode_ai(
    conn: Connection, *, snapshot: Snapshot, conversation_id: int, actor: str, reason: str, brief: str | None = None
) -> ModeChange:
    """Hand the conversation back to the assistant; the only way any part of the product does so."""
    limit = snapshot["ai_human_toggle_logic"]["brief_max_chars"]
    return apply_mode_change(
        conn, conversation_id=conversation_id, mode="AI", actor=actor, reason=reason,
        brief=(brief or "").strip()[:limit] or None,
    )


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    p.add_argument("--reason", default="cli", help="why (shown in the inbox timeline)")
    p.add_argument("--brief", default=None, help="context for the AI when it takes over again")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            return set_mode_ai(
                conn, snapshot=load_directives(), conversation_id=args.conversation, actor="cli", reason=args.reason, brief=args.brief
            )

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
