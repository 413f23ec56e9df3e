"""Apply one stored webhook event: store what it says and take the actions it implies.

Writes (in the caller's transaction, with the event's own outcome): contacts, conversations,
messages; the reply schedule (conversations.reply_due_at, by the burst window of
message_sending_rules) for a customer message the router directive says to answer;
conversations.mode = HUMAN on a reply typed on the agent's phone (reason phone_reply);
messages.delivery_status forward only; channels.provider_state.
Guard: the event row is locked by its claim; UNIQUE (conversation_id, provider_message_id)
makes a replay store nothing twice. Never calls a provider or the LLM. The event is read by its
provider's parser (providers/), under the directive snapshot the caller passes.

usage: python -m execution.process_inbound --pending | --event ID
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from execution.identify_conversation import identify_conversation
from execution.lib import cli, conversation_store, event_runner, message_store, tenant_store
from execution.lib.db import Connection
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import ConfigError, RetryLater
from execution.lib.providers import provider_class
from execution.lib.providers.base import EventKind, InboundMessage, ParsedEvent
from execution.set_mode_human import set_mode_human


class Outcome(str, enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    AGENT_TAKEOVER = "agent_takeover"
    RECONCILED = "reconciled"
    STATUS_UPDATED = "status_updated"
    STATUS_UNCHANGED = "status_unchanged"
    STATE_UPDATED = "state_updated"
    NOTED = "noted"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ProcessResult:
    event_id: int
    outcome: Outcome
    event_type: str
    conversation_id: int | None = None
    message_id: int | None = None
    needs_reply: bool = False
    reason: str | None = None


def parse_event(event: dict) -> list[ParsedEvent]:
    try:
        parse = provider_class(event["provider"]).parse
    except ConfigError:
        return [ParsedEvent(EventKind.IGNORED, event.get("event_type") or "unknown", reason="no parser for provider")]
    return parse(event["payload"]) or [ParsedEvent(EventKind.IGNORED, event.get("event_type") or "unknown",
                                                   reason="nothing in the event")]


def process_event(conn: Connection, *, event: dict, snapshot: Snapshot, final_attempt: bool = False) -> ProcessResult:
    """Do what one event says; raise RetryLater when it refers to something not stored yet."""
    channel = tenant_store.get_channel(conn, channel_id=event["channel_id"]) if event.get("channel_id") else None
    results = [_apply(conn, parsed, channel, event["id"], snapshot, final_attempt) for parsed in parse_event(event)]
    # One stored event is usually one parsed event; where a provider packs several, report the first that did something.
    return next((r for r in results if r.outcome is not Outcome.IGNORED), results[0])


def _apply(conn, parsed: ParsedEvent, channel: dict | None, event_id: int, snapshot: Snapshot,
           final_attempt: bool) -> ProcessResult:
    result = _Result(event_id, parsed.event_type)
    if parsed.kind is EventKind.IGNORED:
        return result(Outcome.IGNORED, reason=parsed.reason)
    if channel is None:
        return result(Outcome.IGNORED, reason="channel no longer exists")
    if parsed.kind in (EventKind.MESSAGE, EventKind.CALL):
        return _store_customer_message(conn, channel, parsed.message, event_id, result, snapshot)
    if parsed.kind is EventKind.AGENT_MESSAGE:
        return _store_agent_message(conn, channel, parsed.message, event_id, result, snapshot)
    if parsed.kind is EventKind.ECHO:
        return _reconcile_echo(conn, channel, parsed.message, event_id, result, final_attempt)
    if parsed.kind is EventKind.STATUS:
        s = parsed.status
        changed = message_store.update_delivery_status(
            conn, channel_id=channel["id"], provider_message_id=s.provider_message_id, status=s.status,
            detail=s.description,
        )
        if not changed and s.reference and message_store.settle_by_key(
                conn, channel_id=channel["id"], idempotency_key=s.reference, provider_message_id=s.provider_message_id):
            # A send whose answer a crash lost, named by our own key: it went; now it has its id.
            changed = message_store.update_delivery_status(
                conn, channel_id=channel["id"], provider_message_id=s.provider_message_id, status=s.status,
                detail=s.description)
            return result(Outcome.RECONCILED, reason="settled a send whose answer was never recorded")
        if changed:
            return result(Outcome.STATUS_UPDATED)
        if message_store.message_exists(conn, channel_id=channel["id"], provider_message_id=s.provider_message_id):
            return result(Outcome.STATUS_UNCHANGED, reason="status would move backwards or is already final")
        if final_attempt:
            return result(Outcome.IGNORED, reason="status for a message we never stored")
        raise RetryLater("status arrived before its message was recorded")
    if parsed.kind is EventKind.STATE:
        tenant_store.set_channel_state(conn, channel_id=channel["id"], state=parsed.details.get("state"))
        return result(Outcome.STATE_UPDATED)
    return result(Outcome.NOTED)


class _Result:
    def __init__(self, event_id: int, event_type: str) -> None:
        self.event_id, self.event_type = event_id, event_type

    def __call__(self, outcome: Outcome, **kw) -> ProcessResult:
        return ProcessResult(self.event_id, outcome, self.event_type, **kw)


def _insert(conn, conversation, msg: InboundMessage, event_id: int, *, direction: str, author: str,
            delivery_status: str | None = None) -> int | None:
    return message_store.insert_message(
        conn,
        organization_id=conversation["organization_id"],
        conversation_id=conversation["id"],
        direction=direction,
        author=author,
        message_type=msg.message_type,
        body=msg.text,
        media=msg.media,
        sender_id=msg.sender_id if conversation["is_group"] else None,
        provider_message_id=msg.provider_message_id,
        quoted_provider_id=msg.quoted_id,
        delivery_status=delivery_status,
        webhook_event_id=event_id,
        provider_timestamp=msg.timestamp,
    )


def _store_customer_message(conn, channel, msg: InboundMessage, event_id: int, result: _Result,
                            snapshot: Snapshot) -> ProcessResult:
    conversation = identify_conversation(conn, channel=channel, chat_id=msg.chat_id, display_name=msg.sender_name)
    message_id = _insert(conn, conversation, msg, event_id, direction="inbound", author="customer")
    if message_id is None:
        return result(Outcome.DUPLICATE, conversation_id=conversation["id"])
    conversation_store.touch_conversation(conn, conversation_id=conversation["id"], inbound=True)
    router, sending = snapshot["incoming_message_router"], snapshot["message_sending_rules"]
    chat = provider_class(channel["provider"]).describe_chat(msg.chat_id)
    allowed = router["answer_groups"] if conversation["is_group"] else chat.answerable
    needs_reply = allowed and conversation["mode"] == "AI" and msg.message_type in router["answer_message_types"]
    if needs_reply:
        # Answered once the customer pauses (burst window), in this event's transaction.
        conversation_store.schedule_reply(conn, conversation_id=conversation["id"], window_s=sending["burst_window_s"],
                                   cap_s=sending["burst_cap_s"])
    reason = None if allowed else (
        "group chat: stored, never answered" if conversation["is_group"] else "not a person's chat: stored, never answered")
    return result(
        Outcome.STORED, conversation_id=conversation["id"], message_id=message_id, needs_reply=needs_reply,
        reason=reason,
    )


def _store_agent_message(conn, channel, msg: InboundMessage, event_id: int, result: _Result,
                         snapshot: Snapshot) -> ProcessResult:
    conversation = identify_conversation(conn, channel=channel, chat_id=msg.chat_id, display_name=None)
    message_id = _insert(conn, conversation, msg, event_id, direction="outbound", author="agent",
                         delivery_status="sent")
    if message_id is None:
        return result(Outcome.DUPLICATE, conversation_id=conversation["id"])
    conversation_store.touch_conversation(conn, conversation_id=conversation["id"], inbound=False)
    if not snapshot["ai_human_toggle_logic"]["phone_reply_takes_over"]:
        return result(Outcome.STORED, conversation_id=conversation["id"], message_id=message_id,
                      reason="typed on the agent's phone; phone_reply_takes_over is off")
    set_mode_human(conn, snapshot=snapshot, conversation_id=conversation["id"], actor="phone", reason="phone_reply")
    return result(Outcome.AGENT_TAKEOVER, conversation_id=conversation["id"], message_id=message_id)


def _reconcile_echo(conn, channel, msg: InboundMessage, event_id: int, result: _Result,
                    final_attempt: bool) -> ProcessResult:
    """Our own API send coming back: match it to the outbox; it is never the agent taking over."""
    row = message_store.outbox_by_provider_id(conn, channel_id=channel["id"], provider_message_id=msg.provider_message_id)
    if row is not None:
        return result(Outcome.RECONCILED)
    # A send whose answer we never recorded (the sender died after the provider took it): the echo
    # carries its id, so it is settled here instead of being sent again.
    if msg.text and message_store.settle_by_text(conn, channel_id=channel["id"], chat_id=msg.chat_id, text=msg.text,
                                                 provider_message_id=msg.provider_message_id) is not None:
        return result(Outcome.RECONCILED, reason="settled a send whose answer was never recorded")
    if not final_attempt:
        raise RetryLater("echo arrived before its send was recorded")
    # Sent through the API by something other than this service: show it, do not take it as the agent.
    conversation = identify_conversation(conn, channel=channel, chat_id=msg.chat_id, display_name=None)
    message_id = _insert(conn, conversation, msg, event_id, direction="outbound", author="system",
                         delivery_status="sent")
    return result(Outcome.STORED, conversation_id=conversation["id"], message_id=message_id,
                  reason="sent through the API by another integration")


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pending", action="store_true", help="process every due event, then exit")
    which.add_argument("--event", type=int, help="process (or re-process) one event by id and show the result")
    args = p.parse_args(argv)

    def work(res):
        snapshot = load_directives()

        def apply(conn, *, event, final_attempt=False):
            return process_event(conn, event=event, snapshot=snapshot, final_attempt=final_attempt)

        if args.pending:
            return event_runner.drain(res.db, apply=apply)
        return event_runner.process_one(res.db, apply=apply, event_id=args.event)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
