"""What each kind of job does when it is due: viewing reminders and the feedback question.

Reads: the job's viewing (scoped to the job's agent), the viewing_rules directive. Writes: the
reminder or question to the customer (author system: it goes whoever holds the conversation, as
the booking promised it), `viewings.feedback_asked_at` (the next customer message is stored as
the feedback), status `done` once the viewing is over.
Guard: each send's idempotency key is the job's key, so a job re-run after a crash sends once; a
viewing that was cancelled or moved, or whose time changed, skips its reminder. On Meta outside the
24-hour window a reminder goes as the directive's `reminder_template` when one is named, else it is
skipped with that reason (the agent sees the viewing in the inbox and the calendar).

usage: python -m execution.job_handlers --list          the kinds of job this release runs
"""

from __future__ import annotations

import json

from execution.lib.job_runner import Handler, JobDone
from execution.lib import cli, viewing_store
from execution.lib.db import Database
from execution.lib.directives import DirectiveStore
from execution.lib.formatting import when_text
from execution.lib.outbound import OutboundContent
from execution.lib.providers import ProviderRegistry
from execution.send_whatsapp_message import send_whatsapp_message
from execution.viewing_messages import notify_customer


def job_handlers(db: Database, redis, providers: ProviderRegistry, directives: DirectiveStore) -> dict[str, Handler]:
    def viewing(job: dict) -> dict | None:
        with db.connection() as conn:
            return viewing_store.get_viewing(conn, agent_id=job["payload"]["agent_id"],
                                             viewing_id=job["payload"]["viewing_id"])

    def reminder(job: dict) -> JobDone:
        v = viewing(job)
        if v is None or v["status"] not in viewing_store.ACTIVE:
            return JobDone("skipped", f"viewing {v['status'] if v else 'gone'}")
        if v["starts_at"].isoformat() != job["payload"].get("starts_at", v["starts_at"].isoformat()):
            return JobDone("skipped", "the viewing's time changed")
        snapshot = directives.current()
        sends = notify_customer(db, redis, providers, snapshot=snapshot, viewing=v, message="reminder", key=job["key"])
        if sends[0] == "outside_window":
            template = snapshot["viewing_rules"]["reminder_template"]
            if not template:
                return JobDone("skipped", "outside the 24-hour window and no reminder_template is set")
            with db.connection() as conn:
                agent = viewing_store.viewing_agent(conn, agent_id=v["agent_id"])
            when = when_text(v["starts_at"], lang="en", timezone=agent["timezone"])
            sends = (send_whatsapp_message(
                db, redis, providers, snapshot=snapshot, conversation_id=v["conversation_id"],
                idempotency_key=f"{job['key']}:template", author="system",
                content=OutboundContent(kind="template", name=template, language="en" if v["language"] != "ar" else "ar",
                                        parameters=(when, v["reference"]))).outcome.value,)
        return JobDone("done", ",".join(sends))

    def feedback(job: dict) -> JobDone:
        v = viewing(job)
        if v is None or v["status"] not in (*viewing_store.ACTIVE, "done"):
            return JobDone("skipped", f"viewing {v['status'] if v else 'gone'}")
        sends = notify_customer(db, redis, providers, snapshot=directives.current(), viewing=v,
                                message="feedback_question", key=job["key"])
        if sends[0] == "outside_window":
            return JobDone("skipped", "outside the 24-hour window")
        with db.transaction() as conn:
            viewing_store.mark_feedback_asked(conn, viewing_id=v["id"])
        return JobDone("done", ",".join(sends))

    return {"viewing_reminder": reminder, "viewing_feedback": feedback}


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--list", action="store_true", required=True)
    p.parse_args(argv)
    print(json.dumps({"kinds": sorted(job_handlers(None, None, None, None))}))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
