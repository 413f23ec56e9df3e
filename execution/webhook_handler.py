"""Take one provider webhook: authenticate it, store each event in it durably once, and acknowledge.

Writes: one webhook_events row per event (INSERT ... ON CONFLICT DO NOTHING, committed before the
200), then wakes the in-process worker (other workers poll). Nothing else happens here. An event
the database refuses (after its body was made storable) is refused alone with 503 and its reason;
the events committed with it are stored.
Guard: UNIQUE (provider, event_key), the key built from the provider's own ids, so a repeated
delivery stores nothing new. Each channel the body speaks for must authenticate it (Green API:
the bearer token against the stored hash; Meta: X-Hub-Signature-256 with the app secret), in
constant time; an unknown instance or a bad credential writes nothing.

usage: python -m execution.webhook_handler --file payload.json [--route green-api] --token TOKEN
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from fastapi.concurrency import run_in_threadpool

from execution.lib import cli, event_store, tenant_store
from execution.lib.db import Database
from execution.lib.errors import BadRequest, DatabaseUnavailable, Unauthorized
from execution.lib.intake import IntakeWriter
from execution.lib.providers import provider_class, route_providers
from execution.lib.providers.base import MAX_BODY_BYTES, ChannelProvider, WebhookRequest, unauthorized
from execution.lib.channel_directory import ChannelDirectory
from execution.lib.security import hash_token

log = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "ChannelDirectory", "WebhookReceiver", "receive", "store_events"]

# An unknown instance is checked against this, so it costs what a wrong credential costs.
_NO_CHANNEL = {"webhook_token_hash": hash_token("no channel has this token"), "webhook_secret": "no channel"}


class Receipt(str, enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class WebhookReceipt:
    outcome: Receipt
    event_id: int | None
    event_type: str
    events: int = 1

    def as_json(self) -> dict:
        return {"ok": True, "outcome": self.outcome.value, "event_id": self.event_id, "events": self.events}


@dataclass(frozen=True)
class PendingEvent:
    """An authenticated event, ready to store."""

    provider: str
    channel_id: int
    event_key: str
    event_type: str
    payload: dict
    chat_id: str | None = None


class EventRefused(DatabaseUnavailable):
    """The database refused to store this one event: 503, so the provider delivers it again."""


def read_request(route: str, request: WebhookRequest):
    """The route's receiving provider and the envelopes in the body; BadRequest / NotFound with the reason."""
    receiver = route_providers(route)[0]
    return receiver, receiver.envelopes(receiver.read_body(request.body))


def authorize(receiver: type[ChannelProvider], request: WebhookRequest, envelopes,
              channels: dict[str, dict | None]) -> list[PendingEvent]:
    """Every known channel the body speaks for must authenticate it; Unauthorized when none is known.

    One Meta app may deliver, in one signed body, events for numbers that are not connected here:
    those are skipped (the signature of a connected number already proved the body authentic),
    so the connected numbers' events are not refused with them and re-sent for days.
    """
    known = {instance: channel for instance, channel in channels.items() if channel is not None}
    if not known:
        try:
            receiver.verify(request, _NO_CHANNEL)   # the same work as a real check, then the same refusal
        except Unauthorized:
            pass
        raise unauthorized()
    for channel in known.values():
        provider_class(channel["provider"]).verify(request, channel)
    if len(known) < len(channels):
        log.info("webhook: skipped %s event(s) for numbers not connected here", sum(
            1 for e in envelopes if e.instance_key not in known))
    return [
        PendingEvent(known[e.instance_key]["provider"], known[e.instance_key]["id"], e.event_key,
                     e.event_type, e.payload, e.chat_id)
        for e in envelopes if e.instance_key in known
    ]


def store_events(db: Database, pending: list[PendingEvent]) -> list[WebhookReceipt | EventRefused]:
    """Store a batch in one statement and one durable commit; the first of a repeated key wins.

    If the database refuses a row, the batch is stored row by row instead: only that event is
    refused (an EventRefused in its place, logged with the reason) and the others are stored.
    """
    rows = [(p.provider, p.channel_id, p.event_key, p.event_type, p.payload, p.chat_id) for p in pending]
    refused: dict[int, str] = {}
    with db.connection() as conn:  # autocommit: each INSERT is its own transaction
        try:
            ids = event_store.insert_events(conn, rows=rows)
        except (psycopg2.Error, ValueError, TypeError) as exc:
            if event_store.row_refusal(exc) is None:
                raise
            ids, refused = event_store.insert_events_row_by_row(conn, rows=rows)
    receipts: list[WebhookReceipt | EventRefused] = []
    seen = set()
    for index, p in enumerate(pending):
        if index in refused:
            log.warning("webhook: event not stored: provider=%s channel=%s reason=%s", p.provider, p.channel_id,
                        refused[index])
            receipts.append(EventRefused(f"the event could not be stored ({refused[index]}); not acknowledged"))
            continue
        key = (p.provider, p.event_key)
        event_id = ids.get(key) if key not in seen else None
        seen.add(key)
        receipts.append(WebhookReceipt(Receipt.STORED if event_id else Receipt.DUPLICATE, event_id, p.event_type))
    return receipts


def combine(receipts: list[WebhookReceipt | BaseException]) -> WebhookReceipt:
    """One receipt for a body's events; an event not stored fails the whole request (it is delivered again)."""
    for failure in receipts:
        if isinstance(failure, BaseException):
            raise failure
    stored = [r for r in receipts if r.outcome is Receipt.STORED]
    first = stored[0] if stored else receipts[0]
    return WebhookReceipt(first.outcome, first.event_id, first.event_type, len(receipts))


class WebhookReceiver:
    """What the web process receives with: the channel directory and the group-commit writer."""

    def __init__(self, db: Database, *, secret_key: str, intake: IntakeWriter | None = None,
                 channels: ChannelDirectory | None = None) -> None:
        self.db = db
        self.channels = channels or ChannelDirectory(db, secret_key=secret_key)
        self.intake = intake

    async def receive_async(self, route: str, request: WebhookRequest) -> WebhookReceipt:
        """For the event loop: only an uncached channel costs a query, and it runs off the loop."""
        try:
            receiver, envelopes = read_request(route, request)
            found = {}
            for instance in dict.fromkeys(e.instance_key for e in envelopes):
                answered, row = self.channels.known(route, instance)
                found[instance] = row if answered else await run_in_threadpool(self.channels.find, route, instance)
            pending = authorize(receiver, request, envelopes, found)
            if self.intake is None:
                return combine(await run_in_threadpool(store_events, self.db, pending))
            futures = [self.intake.submit_async(p) for p in pending]
            # Every outcome is collected, so no failure of a body's other events goes unretrieved.
            return combine(await asyncio.gather(*futures, return_exceptions=True))
        except EventRefused:
            raise
        except (psycopg2.Error, DatabaseUnavailable):
            # Never a 200 without a durable write: the provider will deliver again.
            raise DatabaseUnavailable("storage unavailable; retry later") from None

    def receive(self, route: str, request: WebhookRequest) -> WebhookReceipt:
        return receive(self.db, route=route, request=request, channels=self.channels)

    def handshake(self, route: str, request: WebhookRequest) -> str:
        """A provider's GET verification (Meta's hub.challenge): the challenge, if a channel's token matches."""
        receiver = route_providers(route)[0]
        presented = receiver.verify_token_hash(request)
        if presented is None:
            raise BadRequest("not a verification request this route knows")
        token_hash, challenge = presented
        names = tuple(cls.name for cls in route_providers(route))
        with self.db.connection() as conn:
            if tenant_store.channel_by_webhook_token(conn, providers=names, token_hash=token_hash) is None:
                raise unauthorized()
        return challenge


def receive(db: Database, *, route: str, request: WebhookRequest, channels: ChannelDirectory | None = None,
            secret_key: str = "") -> WebhookReceipt:
    """Authenticate and store one webhook body (the CLI and tests; the app uses WebhookReceiver)."""
    directory = channels or ChannelDirectory(db, secret_key=secret_key, ttl_s=0, miss_ttl_s=0)
    try:
        receiver, envelopes = read_request(route, request)
        found = {i: directory.find(route, i) for i in dict.fromkeys(e.instance_key for e in envelopes)}
        return combine(store_events(db, authorize(receiver, request, envelopes, found)))
    except EventRefused:
        raise
    except (psycopg2.Error, DatabaseUnavailable):
        raise DatabaseUnavailable("storage unavailable; retry later") from None


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--file", type=Path, required=True, help="a webhook body as the provider sent it")
    p.add_argument("--route", default="green-api", help="the webhook route: green-api or meta")
    p.add_argument("--token", default=None, help="Green API: the channel's webhook token")
    p.add_argument("--header", action="append", default=[], metavar="'Name: value'",
                   help="a request header to pass, e.g. 'X-Hub-Signature-256: sha256=...'")
    args = p.parse_args(argv)
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in args.header)}
    if args.token:
        headers["authorization"] = f"Bearer {args.token}"

    def work(res):
        request = WebhookRequest("POST", headers, {}, args.file.read_bytes())
        return receive(res.db, route=args.route, request=request, secret_key=res.settings.secret_key)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())

