"""Hand idle HUMAN conversations back to the assistant after the toggle directive's quiet period.

Reads: ai_human_toggle_logic.auto_resume_after_hours (null: never, the default), conversations,
messages (the agent's last message). Writes: through set_mode_ai (actor assistant, reason
auto_resume), one transaction per conversation. Runs every minute inside the responder loop.
Guard: set_mode_ai changes nothing for a conversation already in AI mode.

usage: python -m execution.resume_conversations
"""

from __future__ import annotations

from execution.lib import cli, conversation_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.set_mode_ai import set_mode_ai


def resume_conversations(db: Database, *, snapshot: Snapshot) -> list[int]:
    """The ids handed back now; none while auto_resume_after_hours is null."""
    hours = snapshot["ai_human_toggle_logic"]["auto_resume_after_hours"]
    if hours is None:
        return []
    resumed = []
    with db.connection() as conn:
        for cid in conversation_store.resume_idle_human_conversations(conn, after_hours=hours):
            change = set_mode_ai(conn, snapshot=snapshot, conversation_id=cid, actor="assistant",
                                 reason=f"auto_resume after {hours} h without the agent")
            if change.changed:
                resumed.append(cid)
    return resumed


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        return {"resumed": resume_conversations(res.db, snapshot=load_directives())}

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
