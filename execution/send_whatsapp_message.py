"""Send one WhatsApp message through the conversation's channel, at most once.

Writes: an outbox row (UNIQUE idempotency_key, `pending` before the provider call, then
`sent` / `failed` / `unknown`) and its outbound timeline message (with the directive versions an
AI message was made under); for a suppressed AI draft only the message (delivery_status
`suppressed`), never an outbox row.
Guards: the ownership fence - for author `ai`, one transaction locks the conversation row
(SELECT ... FOR UPDATE), checks mode = 'AI' and mode_version = the version the AI read, and
only then writes the outbox row. The customer-service window (Meta: 24 h after the customer's
last message): outside it only a template may go, anything else is refused as `outside_window`
and writes nothing. Per-channel pacing in Redis (pace:channel:{id}) at the provider's interval
from message_sending_rules: sends wait for their slot, none is dropped. No database connection
is held during the provider call. A timeout leaves the row `unknown`; it is not resent blindly.

usage: python -m execution.send_whatsapp_message --conversation 42 --text "Hello" [--key agent:UUID]
       python -m execution.send_whatsapp_message --conversation 42 --template viewing_reminder --language en \
           --param "Tomorrow 10:00"
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import redis as redis_lib

from execution.lib import cli, conversation_store, message_store, tenant_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import (
    NotFound,
    OutsideWindow,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderQuotaExceeded,
)
from execution.lib.guards import reserve_send_slot
from execution.lib.providers import ProviderRegistry, provider_class

log = logging.getLogger(__name__)


class SendOutcome(str, enum.Enum):
    SENT = "sent"
    DUPLICATE = "duplicate"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    QUOTA_EXCEEDED = "quota_exceeded"
    OUTSIDE_WINDOW = "outside_window"


@dataclass(frozen=True)
class OutboundContent:
    kind: str = "text"                 # text | file | location | template
    text: str | None = None
    url: str | None = None
    file_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None            # location name, or the template's name
    address: str | None = None
    language: str | None = None        # template language code (en, ar, en_US)
    parameters: tuple[str, ...] = field(default=())

    def payload(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if v is not None and v != ()}


@dataclass(frozen=True)
class SendReport:
    outcome: SendOutcome
    idempotency_key: str
    outbox_id: int | None = None
    message_id: int | None = None
    provider_message_id: str | None = None
    error: str | None = None


def outside_window(provider, last_inbound_at: datetime | None, *, now: datetime) -> bool:
    """Whether a free-form message to this chat would fall outside the provider's service window."""
    if provider.window_hours is None:
        return False
    return last_inbound_at is None or now - last_inbound_at >= timedelta(hours=provider.window_hours)


def _fence_and_record(db: Database, *, conversation_id: int, idempotency_key: str, author: str,
                      content: OutboundContent, expected_mode_version: int | None,
                      directive_versions: dict | None):
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
                directive_versions=directive_versions,
            )
            return SendReport(SendOutcome.SUPPRESSED, idempotency_key, message_id=message_id,
                              error=f"conversation is {conv['mode']} (version {conv['mode_version']})"), None, None
        channel = tenant_store.get_channel(conn, channel_id=conv["channel_id"])
        provider = provider_class(channel["provider"])
        if content.kind != "template" and outside_window(provider, conv["last_inbound_at"],
                                                         now=datetime.now(timezone.utc)):
            return SendReport(SendOutcome.OUTSIDE_WINDOW, idempotency_key,
                              error=f"outside_window: the customer last wrote more than {provider.window_hours} h "
                                    "ago; only an approved template may be sent"), None, None
        outbox_id = message_store.insert_outbox(
            conn, conversation=conv, idempotency_key=idempotency_key, kind=content.kind, author=author,
            payload=content.payload(), mode_version=conv["mode_version"] if author == "ai" else None,
        )
        if outbox_id is None:
            prior = message_store.get_outbox(conn, idempotency_key=idempotency_key)
            return SendReport(SendOutcome.DUPLICATE, idempotency_key, prior["id"], prior["message_id"],
                              prior["provider_message_id"], prior["last_error"]), None, None
        message_id = message_store.insert_message(
            conn, organization_id=conv["organization_id"], conversation_id=conv["id"], direction="outbound",
            author=author, message_type=content.kind, body=content.text,
            media=None if content.kind == "text" else content.payload(), delivery_status="pending",
            outbox_id=outbox_id, directive_versions=directive_versions if author == "ai" else None,
        )
        conversation_store.touch_conversation(conn, conversation_id=conv["id"], inbound=False)
        return SendReport(SendOutcome.SENT, idempotency_key, outbox_id, message_id), channel, conv["chat_id"]


def _call(provider, chat_id: str, content: OutboundContent):
    if content.kind == "text":
        return provider.send_text(chat_id=chat_id, text=content.text or "")
    if content.kind == "file":
        return provider.send_file(chat_id=chat_id, url=content.url, file_name=content.file_name, caption=content.text)
    if content.kind == "location":
        return provider.send_location(chat_id=chat_id, latitude=content.latitude, longitude=content.longitude,
                                      name=content.name, address=content.address)
    if content.kind == "template":
        return provider.send_template(chat_id=chat_id, name=content.name or "", language=content.language or "en",
                                      parameters=tuple(content.parameters))
    raise ValueError(f"unknown content kind {content.kind!r}")


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
) -> SendReport:
    """Send once behind the fence; an AI message records the directive versions it was made under."""
    if author not in ("ai", "agent", "system"):
        raise ValueError("author must be ai, agent or system")
    if author == "ai" and expected_mode_version is None:
        raise ValueError("an AI send must carry the mode_version it read (the fence)")
    report, channel, chat_id = _fence_and_record(
        db, conversation_id=conversation_id, idempotency_key=idempotency_key, author=author, content=content,
        expected_mode_version=expected_mode_version, directive_versions=snapshot.versions(),
    )
    if channel is None:
        return report
    sending = snapshot["message_sending_rules"]
    pace_ms = sending["send_interval_ms"].get(channel["provider"], sending["default_send_interval_ms"])
    if redis is not None:
        try:
            wait_ms = reserve_send_slot(redis, channel["id"], interval_ms=pace_ms)
        except redis_lib.RedisError:
            wait_ms = 0
            log.warning("pacing unavailable (Redis); sending without waiting for a slot")
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
    status, delivery, pmid, error, outcome = "sent", "pending", None, None, SendOutcome.SENT
    try:
        result = _call(providers.for_channel(channel), chat_id, content)
        pmid, delivery = result.provider_message_id, result.delivery_status
    except ProviderOutcomeUnknown as exc:
        status, delivery, error, outcome = "unknown", "unknown", str(exc), SendOutcome.UNKNOWN
    except ProviderQuotaExceeded as exc:
        status, delivery, error, outcome = "failed", "failed", f"{exc} {exc.detail or ''}".strip(), SendOutcome.QUOTA_EXCEEDED
    except ProviderError as exc:
        status, delivery, error, outcome = "failed", "failed", str(exc), SendOutcome.FAILED
    with db.transaction() as conn:
        message_store.finish_outbox(conn, outbox_id=report.outbox_id, status=status, provider_message_id=pmid,
                                    delivery_status=delivery, error=error)
    log.info("send outbox=%s channel=%s outcome=%s", report.outbox_id, channel["id"], outcome.value)
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
