"""Send one WhatsApp message through the conversation's channel, at most once.

Writes: an outbox row (UNIQUE idempotency_key, `pending` with a claim before the provider call,
then `sent` / `failed` / `unknown`, or `retrying` when the provider could not take it — then
reconcile_outbox sends it, in the channel's order, until the sending directive's horizon) and its
outbound timeline message (with the directive versions an
AI message was made under); for a suppressed AI draft only the message (delivery_status
`suppressed`), never an outbox row.
Guards: the ownership fence - for author `ai`, one transaction locks the conversation row
(SELECT ... FOR UPDATE), checks mode = 'AI' and mode_version = the version the AI read, and that no
message a person wrote in the chat is received but not yet applied (a phone takeover acknowledged
but still in the worker's backlog: the send is `deferred`), and only then writes the outbox row. The customer-service window (Meta: 24 h after the customer's
last message): outside it only a template may go, anything else is refused as `outside_window`
and writes nothing. Per-channel pacing in Redis (pace:channel:{id}) at the provider's interval
from message_sending_rules: sends wait for their slot, none is dropped. No database connection
is held during the provider call. A timeout leaves the row `unknown` (and the conversation flagged
for the agent); it is not resent blindly. A send after a still-queued one of the same channel is
queued behind it.

usage: python -m execution.send_whatsapp_message --conversation 42 --text "Hello" [--key agent:UUID]
       python -m execution.send_whatsapp_message --conversation 42 --template viewing_reminder --language en \
           --param "Tomorrow 10:00"
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

import redis as redis_lib

from execution.lib import cli, conversation_store, message_store, tenant_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.delivery import deliver
from execution.lib.errors import BadRequest, NotFound, OutsideWindow
from execution.lib.outbound import OutboundContent, SendOutcome, SendReport, outside_window
from execution.lib.providers import ProviderRegistry, provider_class

log = logging.getLogger(__name__)

__all__ = ["OutboundContent", "SendOutcome", "SendReport", "send_whatsapp_message"]


def _fence_and_record(db: Database, *, snapshot: Snapshot, conversation_id: int, idempotency_key: str, author: str,
                      content: OutboundContent, expected_mode_version: int | None,
                      directive_versions: dict | None, generation: dict | None):
    """The fence: one transaction that either writes the outbox row or keeps the draft as suppressed."""
    with db.transaction() as conn:
        conv = conversation_store.get_conversation(conn, conversation_id=conversation_id, for_update=True)
        if conv is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        if author == "ai" and (conv["mode"] != "AI" or conv["mode_version"] != expected_mode_version):
            message_id = message_store.insert_message(
                conn, organization_id=conv["organization_id"], conversation_id=conv["id"], direction="outbound",
                author="ai", message_type=content.kind, body=content.text,
                media={"draft_for": idempotency_key, **content.payload()}, delivery_status="suppressed",
                directive_versions=directive_versions, generation=generation,
            )
            return SendReport(SendOutcome.SUPPRESSED, idempotency_key, message_id=message_id,
                              error=f"conversation is {conv['mode']} (version {conv['mode_version']})"), None, None
        channel = tenant_store.get_channel(conn, channel_id=conv["channel_id"])
        provider = provider_class(channel["provider"])
        if author == "ai" and message_store.unapplied_person_events(
                conn, channel_id=conv["channel_id"], chat_id=conv["chat_id"], event_types=provider.person_event_types):
            # The agent may have written from the phone a moment ago: once that webhook was acknowledged,
            # the assistant does not talk over it, whatever the worker's backlog.
            return SendReport(SendOutcome.DEFERRED, idempotency_key,
                              error="a message of this chat is received but not applied yet"), None, None
        if content.kind != "template" and outside_window(provider, conv["last_inbound_at"],
                                                         now=datetime.now(timezone.utc)):
            return SendReport(SendOutcome.OUTSIDE_WINDOW, idempotency_key,
                              error=f"outside_window: the customer last wrote more than {provider.window_hours} h "
                                    "ago; only an approved template may be sent"), None, None
        sending = snapshot["message_sending_rules"]
        inserted = message_store.insert_outbox(
            conn, conversation=conv, idempotency_key=idempotency_key, kind=content.kind, author=author,
            payload=content.payload(), mode_version=conv["mode_version"] if author == "ai" else None,
            claim_s=sending["send_claim_s"], horizon_s=sending["retry_horizon_s"],
        )
        if inserted is None:
            prior = message_store.get_outbox(conn, idempotency_key=idempotency_key)
            if prior["conversation_id"] != conv["id"]:
                raise BadRequest("this idempotency key was already used for another conversation")
            return SendReport(SendOutcome.DUPLICATE, idempotency_key, prior["id"], prior["message_id"],
                              prior["provider_message_id"], prior["last_error"]), None, None
        outbox_id, status = inserted
        message_id = message_store.insert_message(
            conn, organization_id=conv["organization_id"], conversation_id=conv["id"], direction="outbound",
            author=author, message_type=content.kind, body=content.text,
            media=None if content.kind == "text" else content.payload(), delivery_status="pending",
            outbox_id=outbox_id, directive_versions=directive_versions if author == "ai" else None,
            generation=generation if author == "ai" else None,
        )
        conversation_store.touch_conversation(conn, conversation_id=conv["id"], inbound=False)
        if status == "retrying":   # older sends of this channel are still waiting: this one goes after them
            return SendReport(SendOutcome.QUEUED, idempotency_key, outbox_id, message_id), None, None
        return SendReport(SendOutcome.SENT, idempotency_key, outbox_id, message_id), channel, conv["chat_id"]


def send_whatsapp_message(
    db: Database,
    redis: redis_lib.Redis | None,
    providers: ProviderRegistry,
    *,
    snapshot: Snapshot,
    conversation_id: int,
    idempotency_key: str,
    author: str,
    content: OutboundContent,
    expected_mode_version: int | None = None,
    generation: dict | None = None,
) -> SendReport:
    """Send once behind the fence; an AI message records the directive versions it was made under and
    `generation` (how it was written: backend, model, tokens, guard outcome)."""
    if author not in ("ai", "agent", "system"):
        raise ValueError("author must be ai, agent or system")
    if author == "ai" and expected_mode_version is None:
        raise ValueError("an AI send must carry the mode_version it read (the fence)")
    report, channel, chat_id = _fence_and_record(
        db, snapshot=snapshot, conversation_id=conversation_id, idempotency_key=idempotency_key, author=author, content=content,
        expected_mode_version=expected_mode_version, directive_versions=snapshot.versions(), generation=generation,
    )
    if channel is None:
        return report
    outcome, pmid, error = deliver(db, redis, providers, snapshot=snapshot, channel=channel, chat_id=chat_id,
                                   outbox_id=report.outbox_id, conversation_id=conversation_id, content=content,
                                   reference=idempotency_key)
    return SendReport(outcome, idempotency_key, report.outbox_id, report.message_id, pmid, error)


def main(argv: list[str] | None = None, *, resources=None, providers: ProviderRegistry | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="message text")
    what.add_argument("--template", help="an approved template's name (needed outside Meta's 24-hour window)")
    p.add_argument("--language", default="en", help="the template's language code")
    p.add_argument("--param", action="append", default=[], help="a template body parameter, in order")
    p.add_argument("--key", default=None, help="idempotency key (default agent:<new uuid>)")
    args = p.parse_args(argv)
    content = (OutboundContent(text=args.text) if args.text is not None else
               OutboundContent(kind="template", name=args.template, language=args.language,
                               parameters=tuple(args.param)))

    def work(res):
        registry = providers or ProviderRegistry(secret_key=res.settings.secret_key)
        report = send_whatsapp_message(
            res.db, res.redis, registry, snapshot=load_directives(), conversation_id=args.conversation,
            idempotency_key=args.key or f"agent:{uuid.uuid4()}", author="agent", content=content,
        )
        if report.outcome is SendOutcome.OUTSIDE_WINDOW:
            raise OutsideWindow(report.error)
        return report

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
