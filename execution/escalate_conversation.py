"""Hand a conversation to the agent because a customer needs a person: handoff reply, HUMAN, alert.

Reads: the escalation_triggers directive (the agent alert's wording), the agent's own phone.
Writes: the handoff reply (an AI send behind the fence), conversations.mode = HUMAN through
set_mode_human (reason escalation:<rule>), one escalations row (needs_attention raised), and a
WhatsApp alert to the agent's own number in their alerts chat (kept HUMAN so the assistant never
talks to the agent); escalations.alert_status records whether the agent was told.
Guard: idempotency keys handoff:{message id} and alert:{escalation id}; UNIQUE (conversation_id,
message_id) on escalations, so a retry escalates once.

usage: python -m execution.escalate_conversation --conversation 42 --reason "VIP customer"
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from execution.alert_agent import alert_agent, customer_label
from execution.check_escalation import EscalationDecision
from execution.lib import cli, conversation_store, escalation_store, tenant_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives, localized
from execution.lib.errors import NotFound, RetryLater
from execution.lib.providers import ProviderRegistry
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.set_mode_human import set_mode_human

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EscalationReport:
    conversation_id: int
    rule: str
    escalation_id: int | None
    alert: str | None
    sends: tuple[str, ...] = ()


def handoff_for_category(directive, category: str, *, language: str, agent_name: str, agent_gender: str | None,
                         why: str) -> EscalationDecision:
    """The decision for a model's escalate_to_human call: that category's handoff reply, rule `model`."""
    rule = next(r for r in directive["rules"] if r["category"] == category)
    reply = localized(rule["reply"], language, gender=agent_gender).format(agent_name=agent_name)
    return EscalationDecision(True, language, "model", category, None, None, reply, why=f"model: {why}"[:300])


EXCERPT_CHARS = 140


def _reason(decision: EscalationDecision, message: dict) -> str:
    """What the inbox shows beside the category: the customer's own words (what a rule matched or an
    example resembled is the decider's business: `check_escalation --text` shows it), else the
    decider's account (a model's stated reason, an operator's)."""
    body = " ".join((message.get("body") or "").split())
    if body and decision.rule not in ("model", "operator"):
        return f"“{body[:EXCERPT_CHARS]}{'…' if len(body) > EXCERPT_CHARS else ''}”"
    return decision.why


def escalate_conversation(
    db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, conversation: dict, agent: dict,
    message: dict, decision: EscalationDecision, expected_mode_version: int | None,
) -> EscalationReport:
    """Tell the customer, step aside, and tell the agent; each step once, whatever is retried."""
    sends = []
    if decision.reply:
        handoff = send_whatsapp_message(
            db, redis, providers, snapshot=snapshot, conversation_id=conversation["id"],
            idempotency_key=f"handoff:{message['id']}", author="ai", content=OutboundContent(text=decision.reply),
            expected_mode_version=expected_mode_version)
        if handoff.outcome is SendOutcome.DEFERRED:   # decide again once the chat's newer message is applied
            raise RetryLater("a message of this chat is received but not applied yet")
        sends.append(handoff.outcome.value)
    with db.transaction() as conn:
        set_mode_human(conn, snapshot=snapshot, conversation_id=conversation["id"], actor="assistant",
                       reason=f"escalation:{decision.rule}")
        escalation_id = escalation_store.insert_escalation(
            conn, organization_id=conversation["organization_id"], conversation_id=conversation["id"],
            message_id=message["id"], rule=decision.rule, category=decision.category, reason=_reason(decision, message))
    alert = None
    if escalation_id is not None:
        alert = _alert_agent(db, redis, providers, snapshot, conversation, agent, message, decision, escalation_id)
        sends.append(alert)
        # Ids, rule and outcome only: the customer's words stay in the database.
        log.info("conversation %s escalated: escalation=%s rule=%s category=%s handoff=%s alert=%s",
                 conversation["id"], escalation_id, decision.rule, decision.category,
                 sends[0] if decision.reply else "none", alert)
    return EscalationReport(conversation["id"], decision.rule, escalation_id, alert, tuple(sends))


def _alert_agent(db, redis, providers, snapshot, conversation, agent, message, decision, escalation_id: int) -> str:
    """A WhatsApp message to the agent's own number through the channel (the inbox flag is already up)."""
    with db.connection() as conn:
        channel = tenant_store.get_channel(conn, channel_id=conversation["channel_id"])
    template = snapshot["escalation_triggers"]["agent_alert"]["ar" if agent["language"] == "ar" else "en"]
    text = template.format(customer=customer_label(conversation, channel), category=decision.category,
                           rule=decision.rule, excerpt=(message["body"] or "")[:160])
    status = alert_agent(db, redis, providers, snapshot=snapshot, conversation=conversation, agent=agent,
                         key=f"alert:{escalation_id}", text=text)
    with db.connection() as conn:
        escalation_store.set_alert_status(conn, escalation_id=escalation_id, status=status)
    return status


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    p.add_argument("--reason", default="cli", help="why the agent is needed (shown to the agent)")
    args = p.parse_args(argv)

    def work(res):
        from execution.generate_ai_response import agent_profile

        with res.db.connection() as conn:
            conversation = conversation_store.get_conversation(conn, conversation_id=args.conversation)
            if conversation is None:
                raise NotFound(f"conversation {args.conversation} does not exist")
            last = conversation_store.unanswered_customer_messages(conn, conversation_id=args.conversation)
            if not last:
                raise NotFound(f"conversation {args.conversation} has no customer message to escalate")
            agent = agent_profile(conn, agent_id=conversation["agent_id"])
        decision = EscalationDecision(True, "en", rule="operator", category="human_request", why=args.reason)
        return escalate_conversation(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                     snapshot=load_directives(), conversation=conversation, agent=agent,
                                     message=last[-1], decision=decision, expected_mode_version=None)

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
