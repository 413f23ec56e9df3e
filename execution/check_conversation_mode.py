"""Show who speaks in a conversation: the mode, its version, why, and what is pending.

Reads: conversations, escalations, followups. Writes nothing.

usage: python -m execution.check_conversation_mode --conversation 42
"""

from __future__ import annotations

from execution.lib import cli, conversation_store
from execution.lib.db import Connection
from execution.lib.errors import NotFound


def check_conversation_mode(conn: Connection, *, conversation_id: int) -> dict:
    row = conversation_store.conversation_state(conn, conversation_id=conversation_id)
    if row is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    return row


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            return check_conversation_mode(conn, conversation_id=args.conversation)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
