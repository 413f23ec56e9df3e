"""What each kind of job does when it is due: viewing reminders, the feedback question, follow-ups.

Reads: the job's viewing (scoped to the job's agent), the viewing_rules directive. Writes: the
reminder or question to the customer (author system: it goes whoever holds the conversation, as
the booking promised it), `viewings.feedback_asked_at` (the next customer message is stored as
the feedback), status `done` once the viewing is over.
Guard: each send's idempotency key is the job's key, so a job re-run after a crash sends once; a
viewing that was cancelled or moved, or whose time changed, skips its reminder. On Meta outside the
24-hour window a reminder goes as the directive's `reminder_template` when one is named, else it is
skipped with that reason (the agent sees the viewing in the inbox and the calendar).

A follow-up (`followup`, the follow_up_rules directive) goes only while the conversation is AI, the
customer has not written since and never asked to stop, outside quiet hours (moved to their end),
behind the fence; a takeover cancels its `followups` row and so the job (hand-back does not revive
it); once sent, the next one is scheduled.

usage: python -m execution.job_handlers --list          the kinds of job this release runs
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta, timezone

from execution.lib.job_runner import Handler, JobDone
from execution.lib import cli, conversation_store, followup_store, job_store, viewing_store
from execution.lib.db import Database
from execution.lib.criteria import detect_language
from execution.lib.db import Connection
from execution.lib.directives import DirectiveStore, Snapshot, localized
from execution.lib.text import normalize
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
        if v["starts_at"] <= datetime.now(timezone.utc) + timedelta(minutes=15):
            return JobDone("skipped", "too late: the viewing is about to start or has started")   # a worker was down
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

    def followup(job: dict) -> JobDone:
        snapshot, fid = directives.current(), job["payload"]["followup_id"]
        rules = snapshot["follow_up_rules"]
        with db.connection() as conn:
            row = followup_store.get_followup(conn, followup_id=fid)
            if row is None or row["status"] != "pending":
                return JobDone("skipped", f"follow-up {row['status'] if row else 'gone'}")
            conversation = conversation_store.get_conversation(conn, conversation_id=row["conversation_id"])
            since, texts = followup_store.customer_texts_since(conn, conversation_id=row["conversation_id"],
                                                               after_id=row["message_id"])
            agent = viewing_store.viewing_agent(conn, agent_id=conversation["agent_id"])
            why = ("the agent has the conversation" if conversation["mode"] != "AI" else
                   "the customer wrote since" if since else
                   "the customer asked to stop" if _asked_to_stop(rules, texts) else None)
            if why:
                followup_store.finish_followup(conn, followup_id=fid, status="cancelled", reason=why)
                return JobDone("skipped", why)
            later = _after_quiet_hours(rules, agent["timezone"])
            if later is not None:
                job_store.enqueue(conn, organization_id=row["organization_id"], kind="followup",
                                  key=f"followup:{fid}:{later:%Y%m%d%H%M}", run_at=later, payload={"followup_id": fid})
                return JobDone("skipped", f"quiet hours: moved to {later.isoformat()}")
        lang = detect_language(texts[0]) if texts else "en"
        text = localized(rules["messages"]["nudge"], lang, gender=agent.get("gender")).format(agent_name=agent["name"])
        sent = send_whatsapp_message(db, redis, providers, snapshot=snapshot, conversation_id=conversation["id"],
                                     idempotency_key=f"followup:{fid}", author="ai", content=OutboundContent(text=text),
                                     expected_mode_version=conversation["mode_version"]).outcome.value
        with db.transaction() as conn:
            if sent not in ("sent", "queued", "duplicate"):
                followup_store.finish_followup(conn, followup_id=fid, status="cancelled", reason=sent)
                return JobDone("skipped", sent)
            followup_store.finish_followup(conn, followup_id=fid, status="sent")
            n = int(row["kind"].rsplit("_", 1)[1])
            if n < len(rules["delays_hours"]):
                schedule_followup(conn, snapshot=snapshot, conversation=conversation, message_id=row["message_id"],
                                  n=n + 1, now=datetime.now(timezone.utc))
        return JobDone("done", sent)

    return {"viewing_reminder": reminder, "viewing_feedback": feedback, "followup": followup}


def schedule_followup(conn: Connection, *, snapshot: Snapshot, conversation: dict, message_id: int, n: int,
                      now: datetime) -> int | None:
    """The n-th follow-up after the reply to `message_id`: a followups row (a takeover cancels it) and its job."""
    delays = snapshot["follow_up_rules"]["delays_hours"]
    due = now + timedelta(hours=delays[n - 1])
    fid = followup_store.schedule_nudge(conn, organization_id=conversation["organization_id"],
                                        conversation_id=conversation["id"], message_id=message_id, n=n, due_at=due)
    if fid is not None:
        job_store.enqueue(conn, organization_id=conversation["organization_id"], kind="followup",
                          key=f"followup:{fid}", run_at=due, payload={"followup_id": fid})
    return fid


def _asked_to_stop(rules, texts: list[str]) -> bool:
    patterns = [p for ps in rules["stop_patterns"].values() for p in ps]
    return any(re.search(p, normalize(t), re.I) for t in texts for p in patterns)


def _after_quiet_hours(rules, tz: str, now: datetime | None = None) -> datetime | None:
    """None outside the quiet hours; inside them, when they end (the agent's time zone)."""
    local = (now or datetime.now(timezone.utc)).astimezone(viewing_store.zone({"timezone": tz}))
    start, end = (time.fromisoformat(t) for t in rules["quiet_hours"])
    clock = local.time()
    quiet = start <= clock < end if start < end else (clock >= start or clock < end)
    if not quiet:
        return None
    ends = datetime.combine(local.date(), end, local.tzinfo)
    return ends if ends > local else ends + timedelta(days=1)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--list", action="store_true", required=True)
    p.parse_args(argv)
    print(json.dumps({"kinds": sorted(job_handlers(None, None, None, None))}))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
