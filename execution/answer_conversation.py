"""Answer one conversation whose burst window has closed: load, decide, generate, send behind the fence.

Reads: the unanswered customer messages, the conversation's mode and mode_version (read BEFORE
anything is generated), the agent, the directives in the snapshot passed in.
Writes: messages / outbox (through send_whatsapp_message), the reply schedule, and for a reply
that promises something on the agent's behalf a follow-up task for the agent (needs_attention);
after a shortlist, the first follow-up (follow_up_rules: a followups row and its job); escalation is
escalate_conversation's, viewings viewing_reply's (it answers first when the messages are about one).
Guard: Redis lock lock:conversation:{id} (one writer per conversation), renewed while the reply
is written; idempotency key reply:{last message id}; the fence refuses an AI send once a
takeover has committed, and defers it (RetryLater: answered again shortly, with whatever arrived)
while a message of the chat is received but not applied. No connection is held across steps: load, decide and send each borrow
their own, and generation borrows one only for the offline responder's own queries.

usage: python -m execution.answer_conversation --conversation 42
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone

from execution.check_escalation import check_escalation
from execution.escalate_conversation import escalate_conversation, handoff_for_category
from execution.generate_ai_response import Reply, agent_profile, generate_ai_response
from execution.job_handlers import schedule_followup
from execution.lib import cli, conversation_store, followup_store, message_store, tenant_store, viewing_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import NotFound, RetryLater
from execution.lib.guards import conversation_lock
from execution.lib.llm import BACKENDS, ModelBackend, backend_from_settings
from execution.lib.providers import ProviderRegistry, provider_class
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.viewing_messages import notify_agent
from execution.lib.viewing_intent import wants_viewing
from execution.viewing_reply import viewing_reply


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
    model: ModelBackend | None = None,
) -> AnswerReport:
    race = snapshot["race_condition_handling"]
    lock = conversation_lock(redis, conversation_id, ttl_ms=race["conversation_lock_ttl_s"] * 1000,
                             wait_ms=int(race["conversation_lock_wait_s"] * 1000))
    with lock, lock.kept_alive():
        with db.connection() as conn:                                # load
            conversation = conversation_store.get_conversation(conn, conversation_id=conversation_id)
            if conversation is None:
                raise NotFound(f"conversation {conversation_id} does not exist")
            version = conversation["mode_version"]          # read before anything is generated
            messages = conversation_store.unanswered_customer_messages(conn, conversation_id=conversation_id)
            if conversation["mode"] != "AI" or not messages:
                # Clear the schedule, unless a customer message arrived after what was read here.
                seen = messages[-1]["id"] if messages else conversation_store.last_customer_message_id(
                    conn, conversation_id=conversation_id)
                conversation_store.finish_reply(conn, conversation_id=conversation_id, through_message_id=seen)
                return AnswerReport(conversation_id, Answer.HUMAN if conversation["mode"] != "AI" else Answer.NOTHING)
            agent = agent_profile(conn, agent_id=conversation["agent_id"])
            if _chat_has_unapplied_messages(conn, conversation):
                # Decide once that message is applied (it may be the agent taking over): no reply is
                # written for a conversation that is about to change.
                raise RetryLater("a message of this chat is received but not applied yet")
        last = messages[-1]
        said = "\n".join(m["body"] or "" for m in messages)
        decision = check_escalation(said, directive=snapshot["escalation_triggers"], agent_name=agent["name"],  # decide
                                    agent_gender=agent.get("gender"))
        # The rules always win; the examples (a fuzzy backstop) leave a plain viewing request to the viewing flow.
        if decision.escalate and not (decision.rule.startswith("examples:") and wants_viewing(said)):
            done = escalate_conversation(db, redis, providers, snapshot=snapshot, conversation=conversation,
                                         agent=agent, message=last, decision=decision, expected_mode_version=version)
            report = AnswerReport(conversation_id, Answer.ESCALATED, rule=decision.rule, sends=done.sends)
        else:
            # A viewing (a request to visit, a choice among offered times, a move, a cancellation, feedback)
            # is answered by the viewing flow, whichever backend is configured; everything else is generated.
            reply = viewing_reply(db, redis, providers, conversation=conversation, messages=messages,
                                  snapshot=snapshot, agent=agent) or generate_ai_response(
                db, conversation=conversation, messages=messages, snapshot=snapshot, agent=agent, model=model)
            if reply.escalation is not None:       # the model asked for the agent, through its tool
                decision = handoff_for_category(snapshot["escalation_triggers"], reply.escalation["category"],
                                                language=reply.language, agent_name=agent["name"],
                                                agent_gender=agent.get("gender"), why=reply.escalation["reason"])
                done = escalate_conversation(db, redis, providers, snapshot=snapshot, conversation=conversation,
                                             agent=agent, message=last, decision=decision,
                                             expected_mode_version=version)
                report = AnswerReport(conversation_id, Answer.ESCALATED, rule=decision.rule, sends=done.sends)
            else:
                report = _send_reply(db, redis, providers, snapshot, conversation, version, last, reply)
        with db.connection() as conn:
            conversation_store.finish_reply(conn, conversation_id=conversation_id, through_message_id=last["id"])
        return report


def _chat_has_unapplied_messages(conn, conversation: dict) -> bool:
    channel = tenant_store.get_channel(conn, channel_id=conversation["channel_id"])
    return message_store.unapplied_person_events(
        conn, channel_id=conversation["channel_id"], chat_id=conversation["chat_id"],
        event_types=provider_class(channel["provider"]).person_event_types) > 0


def _send_reply(db, redis, providers, snapshot, conversation, version: int, last: dict, reply: Reply) -> AnswerReport:
    def send(key: str, content: OutboundContent, generation: dict | None = None):
        return send_whatsapp_message(db, redis, providers, snapshot=snapshot, conversation_id=conversation["id"],
                                     idempotency_key=key, author="ai", content=content, expected_mode_version=version,
                                     generation=generation)

    first = send(f"reply:{last['id']}", OutboundContent(text=reply.text), reply.generation)
    if first.outcome is SendOutcome.DEFERRED:
        raise RetryLater("a message of this chat is received but not applied yet")
    sends = [first.outcome.value]
    delivered = first.outcome in (SendOutcome.SENT, SendOutcome.DUPLICATE, SendOutcome.QUEUED)
    if reply.promise and delivered:
        # The customer was told the agent will do this: it must exist somewhere the agent sees it.
        with db.transaction() as conn:
            followup_store.insert_agent_task(conn, organization_id=conversation["organization_id"],
                                             conversation_id=conversation["id"], message_id=last["id"],
                                             kind=reply.promise)
    if delivered and reply.kind in snapshot["follow_up_rules"]["after_kinds"]:
        # A shortlist the customer may not answer: the follow-ups (cancelled by a takeover or an answer).
        with db.transaction() as conn:
            schedule_followup(conn, snapshot=snapshot, conversation=conversation, message_id=last["id"], n=1,
                              now=datetime.now(timezone.utc))
    if reply.flag and delivered:     # answered offline because the model failed: the agent should look
        outage = (reply.generation or {}).get("outage", last["id"])
        with db.transaction() as conn:
            followup_store.insert_agent_task(conn, organization_id=conversation["organization_id"],
                                             conversation_id=conversation["id"], message_id=last["id"],
                                             kind=reply.flag, key=f"flag:{conversation['id']}:{outage}")
    viewing = (reply.generation or {}).get("viewing")
    if viewing and viewing.get("alert"):        # booked by a model's tool: the agent hears of it now
        with db.connection() as conn:
            found = viewing_store.get_viewing(conn, agent_id=conversation["agent_id"], viewing_id=viewing["id"])
        sends.append(notify_agent(db, redis, providers, snapshot=snapshot, viewing=found, status=viewing["status"],
                                  key=f"viewing:{viewing['id']}:alert:{viewing['status']}"))
    if first.outcome in (SendOutcome.SENT, SendOutcome.QUEUED):   # pins, photos go after the text
        extras = ([reply.pin] if reply.pin else []) + list(reply.media)
        for n, extra in enumerate(extras):
            sends.append(send(f"pin:{last['id']}" if n == 0 and reply.pin else f"media:{last['id']}:{n}",
                              OutboundContent(**extra)).outcome.value)
    answer = Answer.SUPPRESSED if first.outcome is SendOutcome.SUPPRESSED else Answer.REPLIED
    return AnswerReport(conversation["id"], answer, reply.kind, references=reply.references, sends=tuple(sends))


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="answer this conversation now")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="override LLM_BACKEND for this run")
    args = p.parse_args(argv)

    def work(res):
        providers = ProviderRegistry(secret_key=res.settings.secret_key)
        return answer_conversation(res.db, res.redis, providers, conversation_id=args.conversation,
                                   snapshot=load_directives(),
                                   model=backend_from_settings(res.settings, choice=args.backend))

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
