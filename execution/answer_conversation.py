"""Answer a conversation whose burst window has closed: escalate, or reply once, behind the fence.

Reads: the unanswered customer messages, the conversation's mode and mode_version (read BEFORE
anything is generated), the directives. Writes: messages / outbox (through send_whatsapp_message),
conversations (mode, reply schedule), escalations, audit_log.
Guard: Redis lock lock:conversation:{id} (one writer per conversation); the reply claim lease;
idempotency keys reply:{last message id}, handoff:{message id}, alert:{escalation id}; the fence
refuses an AI send once a takeover has committed.

usage: python -m execution.answer_conversation --conversation 42 | --due
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import traceback
from dataclasses import dataclass

import psycopg2

from execution.check_escalation import check_escalation
from execution.generate_ai_response import agent_profile, generate_ai_response
from execution.identify_conversation import identify_conversation
from execution.lib import cli, directives, message_store, reply_store, store
from execution.lib.db import Database
from execution.lib.directives import Snapshot
from execution.lib.errors import DatabaseUnavailable, LockBusy, NotFound
from execution.lib.guards import conversation_lock
from execution.lib.modes import apply_mode_change
from execution.lib.providers import ProviderRegistry
from execution.send_whatsapp_message import DEFAULT_PACE_MS, OutboundContent, SendOutcome, send_whatsapp_message

log = logging.getLogger(__name__)


class Answer(str, enum.Enum):
    REPLIED = "replied"
    ESCALATED = "escalated"
    SUPPRESSED = "suppressed"        # the agent took over while the reply was being written
    HUMAN = "human"                  # nothing to do: the agent has the conversation
    NOTHING = "nothing"              # no unanswered customer message
    BUSY = "busy"                    # another writer holds the conversation; retried shortly
    FAILED = "failed"                # an error; the claim expires and a later pass retries


@dataclass(frozen=True)
class AnswerReport:
    conversation_id: int
    answer: Answer
    kind: str | None = None
    rule: str | None = None
    references: tuple[str, ...] = ()
    sends: tuple[str, ...] = ()


def answer_conversation(
    db: Database, redis, providers: ProviderRegistry, *, conversation_id: int, snapshot: Snapshot,
    pace_ms: int = DEFAULT_PACE_MS,
) -> AnswerReport:
    race = snapshot["race_condition_handling"]
    with conversation_lock(redis, conversation_id, ttl_ms=race["conversation_lock_ttl_s"] * 1000,
                           wait_ms=int(race["conversation_lock_wait_s"] * 1000)):
        with db.connection() as conn:
            conversation = message_store.get_conversation(conn, conversation_id=conversation_id)
            if conversation is None:
                raise NotFound(f"conversation {conversation_id} does not exist")
            version = conversation["mode_version"]          # read before anything is generated
            messages = reply_store.unanswered_customer_messages(conn, conversation_id=conversation_id)
            if conversation["mode"] != "AI" or not messages:
                # Clear the schedule, unless a customer message arrived after what was read here.
                seen = messages[-1]["id"] if messages else reply_store.last_customer_message_id(
                    conn, conversation_id=conversation_id)
                reply_store.finish_reply(conn, conversation_id=conversation_id, through_message_id=seen)
                return AnswerReport(conversation_id, Answer.HUMAN if conversation["mode"] != "AI" else Answer.NOTHING)
            agent = agent_profile(conn, agent_id=conversation["agent_id"])
            last = messages[-1]
            text = "\n".join(m["body"] or "" for m in messages)
            decision = check_escalation(text, directive=snapshot["escalation_triggers"], agent_name=agent["name"])
            reply = None if decision.escalate else generate_ai_response(
                conn, conversation=conversation, messages=messages, snapshot=snapshot, agent=agent)

        def send(key: str, content: OutboundContent, author: str = "ai", cid: int = conversation_id):
            return send_whatsapp_message(db, redis, providers, conversation_id=cid, idempotency_key=key,
                                         author=author, content=content,
                                         expected_mode_version=version if author == "ai" else None, pace_ms=pace_ms)

        if decision.escalate:
            report = _escalate(db, send, conversation, agent, last, decision, snapshot)
        else:
            first = send(f"reply:{last['id']}", OutboundContent(text=reply.text))
            sends = [first.outcome.value]
            if reply.pin and first.outcome is SendOutcome.SENT:
                sends.append(send(f"pin:{last['id']}", OutboundContent(**reply.pin)).outcome.value)
            answer = Answer.SUPPRESSED if first.outcome is SendOutcome.SUPPRESSED else Answer.REPLIED
            report = AnswerReport(conversation_id, answer, reply.kind, references=reply.references, sends=tuple(sends))
        with db.connection() as conn:
            reply_store.finish_reply(conn, conversation_id=conversation_id, through_message_id=last["id"])
        return report


def _escalate(db, send, conversation, agent, last, decision, snapshot) -> AnswerReport:
    handoff = send(f"handoff:{last['id']}", OutboundContent(text=decision.reply))
    toggle = snapshot["ai_human_toggle_logic"]
    with db.transaction() as conn:
        apply_mode_change(conn, conversation_id=conversation["id"], mode="HUMAN", actor="assistant",
                          reason=f"escalation:{decision.rule}", cancel_followups=toggle["takeover_cancels_followups"])
        escalation_id = reply_store.insert_escalation(
            conn, organization_id=conversation["organization_id"], conversation_id=conversation["id"],
            message_id=last["id"], rule=decision.rule, category=decision.category)
    if escalation_id is not None:
        _alert_agent(db, send, conversation, agent, last, decision, escalation_id, snapshot)
    return AnswerReport(conversation["id"], Answer.ESCALATED, rule=decision.rule, sends=(handoff.outcome.value,))


def _alert_agent(db, send, conversation, agent, last, decision, escalation_id: int, snapshot) -> None:
    """A WhatsApp message to the agent's own number through the channel (the inbox flag is already up)."""
    if not agent.get("phone"):
        with db.connection() as conn:
            reply_store.set_alert_status(conn, escalation_id=escalation_id, status="no_phone")
        return
    with db.transaction() as conn:
        channel = store.get_channel(conn, channel_id=conversation["channel_id"])
        alerts = identify_conversation(conn, channel=channel, chat_id=f"{agent['phone']}@c.us",
                                       display_name=f"{agent['name']} (alerts)")
        if alerts["mode"] == "AI":   # the assistant never talks to the agent in their alerts chat
            apply_mode_change(conn, conversation_id=alerts["id"], mode="HUMAN", actor="assistant", reason="agent_alerts")
    template = snapshot["escalation_triggers"]["agent_alert"][agent["language"] if agent["language"] == "ar" else "en"]
    excerpt = (last["body"] or "")[:160]
    customer = conversation["chat_id"].split("@")[0]
    result = send(f"alert:{escalation_id}", OutboundContent(text=template.format(
        customer=customer, category=decision.category, rule=decision.rule, excerpt=excerpt)),
        author="system", cid=alerts["id"])
    with db.connection() as conn:
        reply_store.set_alert_status(conn, escalation_id=escalation_id,
                                     status="sent" if result.outcome in (SendOutcome.SENT, SendOutcome.DUPLICATE)
                                     else "failed")


def answer_due(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot | None = None,
               limit: int = 10, lease_s: float = 60.0, conversation_id: int | None = None) -> list[AnswerReport]:
    """Answer every conversation whose burst window has closed (or one, by id)."""
    with db.transaction() as conn:
        due = reply_store.claim_due_replies(conn, limit=limit, lease_s=lease_s, conversation_id=conversation_id)
    reports = []
    for row in due:
        try:
            reports.append(answer_conversation(db, redis, providers, conversation_id=row["id"],
                                               snapshot=snapshot or directives.current()))
        except LockBusy:
            with db.connection() as conn:
                reply_store.release_reply(conn, conversation_id=row["id"], retry_in_s=1.0)
            reports.append(AnswerReport(row["id"], Answer.BUSY))
        except Exception as exc:  # one conversation's failure must not stop the others being answered
            # The claim is left to expire, so another pass retries after the lease. The log names
            # the error type and where it was raised, never its message (it may quote the customer).
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error("answer: conversation %s failed: %s at %s:%s", row["id"], type(exc).__name__,
                      where.filename.rsplit("/", 1)[-1], where.lineno)
            reports.append(AnswerReport(row["id"], Answer.FAILED, kind=type(exc).__name__))
    return reports


def auto_resume(db: Database, *, snapshot: Snapshot) -> list[int]:
    """Hand idle HUMAN conversations back after ai_human_toggle_logic.auto_resume_after_hours (null: never)."""
    hours = snapshot["ai_human_toggle_logic"]["auto_resume_after_hours"]
    if hours is None:
        return []
    with db.connection() as conn:
        ids = reply_store.resume_idle_human_conversations(conn, after_hours=hours)
        for cid in ids:
            apply_mode_change(conn, conversation_id=cid, mode="AI", actor="assistant",
                              reason=f"auto_resume after {hours} h without the agent")
    return ids


class Responder:
    """The answering loop: every `idle_s`, answer the conversations whose burst window has closed."""

    def __init__(self, db: Database, redis, providers: ProviderRegistry, *, idle_s: float = 0.2,
                 store_: directives.DirectiveStore | None = None) -> None:
        self.db, self.redis, self.providers, self.idle_s = db, redis, providers, idle_s
        self.directives = store_
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        next_resume_check = 0.0
        while not self.stop_event.is_set():
            try:
                snapshot = (self.directives or directives.default_store()).current()
                if time.monotonic() >= next_resume_check:
                    next_resume_check = time.monotonic() + 60
                    auto_resume(self.db, snapshot=snapshot)
                if not answer_due(self.db, self.redis, self.providers, snapshot=snapshot):
                    self.stop_event.wait(self.idle_s)
            except (DatabaseUnavailable, psycopg2.Error) as exc:
                log.warning("responder: database unavailable (%s); retrying", type(exc).__name__)
                self.stop_event.wait(2.0)

    def start(self) -> "Responder":
        self._thread = threading.Thread(target=self.run, name="responder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--conversation", type=int, help="answer this conversation now (its window ignored)")
    which.add_argument("--due", action="store_true", help="answer every conversation that is due, then exit")
    args = p.parse_args(argv)

    def work(res):
        providers = ProviderRegistry(secret_key=res.settings.secret_key)
        return answer_due(res.db, res.redis, providers, conversation_id=args.conversation, limit=100)

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
