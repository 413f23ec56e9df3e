"""Book a viewing of one of the conversation's agent's listings, tell the customer and alert the agent.

Reads: the viewing_rules directive, the conversation, its agent, the listing (the agent's own,
available). Writes, in one transaction: the viewings row, its reminder and feedback jobs, an audit
row; then the confirmation (and the listing's location pin) to the customer and an alert to the
agent's own number, each once.
Guard: the exclusion constraint `viewings_no_overlap` (the agent's time ranges never overlap,
whatever races: of two customers booking one slot, one gets it and the other the slots still free);
idempotency keys: the booking's own (`--key`), `viewing:{id}:confirm`, `viewing:{id}:pin`,
`viewing:{id}:alert:booked`, `reminder:{id}:{hours}h`, `feedback:{id}`.

usage: python -m execution.book_viewing --conversation 42 --reference NH-0001 --at 2026-11-29T18:00 [--language ar] [--key K]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from execution.lib import availability, cli, conversation_store, job_store, tenant_store, viewing_store
from execution.lib.db import Connection, Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import NotFound
from execution.lib.providers import ProviderRegistry
from execution.list_viewing_slots import bookable_listing, list_viewing_slots
from execution.viewing_messages import notify_customer, notify_agent, parse_local

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BookingReport:
    outcome: str                      # booked | already_booked | slot_taken | not_bookable
    viewing_id: int | None = None
    starts_at: datetime | None = None
    reference: str | None = None
    reason: str | None = None         # why not bookable
    alternatives: list = field(default_factory=list)    # free slot starts, when not booked
    sends: tuple = ()


def schedule_viewing_jobs(conn: Connection, *, snapshot: Snapshot, viewing: dict, now: datetime) -> list[str]:
    """The reminders and the feedback question, in the booking's transaction; keys name the viewing."""
    directive = snapshot["viewing_rules"]
    keys = []
    for hours in directive["reminders_before_hours"]:
        at = viewing["starts_at"] - timedelta(hours=hours)
        if at > now:
            key = f"reminder:{viewing['id']}:{hours}h"
            job_store.enqueue(conn, organization_id=viewing["organization_id"], kind="viewing_reminder", key=key,
                              run_at=at, payload={"viewing_id": viewing["id"], "agent_id": viewing["agent_id"],
                                                  "starts_at": viewing["starts_at"].isoformat()})
            keys.append(key)
    key = f"feedback:{viewing['id']}"
    job_store.enqueue(conn, organization_id=viewing["organization_id"], kind="viewing_feedback", key=key,
                      run_at=viewing["ends_at"] + timedelta(hours=directive["feedback_after_hours"]),
                      payload={"viewing_id": viewing["id"], "agent_id": viewing["agent_id"]})
    return keys + [key]


def insert_booking(conn: Connection, *, snapshot: Snapshot, conversation: dict, listing: dict, starts_at: datetime,
                   booked_by: str, language: str, key: str, now: datetime) -> tuple[dict | None, BookingReport | None]:
    """Check the slot and insert the viewing with its jobs; (viewing, None) or (None, the refusal)."""
    agent = viewing_store.viewing_agent(conn, agent_id=conversation["agent_id"])
    rules = availability.rules_for(snapshot["viewing_rules"], agent)
    _, blocked = viewing_store.busy(conn, agent_id=agent["id"], start=starts_at, end=starts_at + rules.slot)
    why = availability.is_bookable(rules, starts_at, now=now, blocked=blocked,
                                   listing_windows=viewing_store.listing_windows(conn, property_id=listing["id"]))

    def others(outcome: str, reason: str | None = None) -> BookingReport:
        free = list_viewing_slots(conn, snapshot=snapshot, agent_id=agent["id"], listing=listing, now=now,
                                  start=max(now, starts_at - timedelta(days=1)))
        return BookingReport(outcome, starts_at=starts_at, reference=listing["reference"], reason=reason,
                             alternatives=free)

    if why is not None:
        return None, others("not_bookable", why)
    try:
        viewing, created = viewing_store.insert_viewing(
            conn, organization_id=conversation["organization_id"], agent_id=agent["id"],
            conversation_id=conversation["id"], property_id=listing["id"], starts_at=starts_at,
            ends_at=starts_at + rules.slot, blocked_until=starts_at + rules.slot + rules.buffer,
            booked_by=booked_by, language=language, idempotency_key=key)
    except viewing_store.SlotTaken:
        return None, others("slot_taken")
    if created:
        schedule_viewing_jobs(conn, snapshot=snapshot, viewing=viewing, now=now)
        tenant_store.insert_audit(conn, organization_id=conversation["organization_id"], actor=booked_by,
                                  action="book_viewing", entity="viewing", entity_id=viewing["id"],
                                  details={"property": listing["reference"], "starts_at": starts_at.isoformat()})
    return viewing, (None if created else BookingReport("already_booked", viewing["id"], viewing["starts_at"],
                                                         listing["reference"]))


def book_viewing(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, conversation_id: int,
                 reference: str, starts_at: datetime, booked_by: str, language: str, idempotency_key: str,
                 expected_mode_version: int | None = None, now: datetime | None = None,
                 tell_customer: bool = True, tell_agent: bool = True) -> BookingReport:
    """`tell_customer=False`: the caller's own reply is the confirmation; `tell_agent=False`: the caller
    alerts the agent once its reply is sent (a model's tool)."""
    now = now or datetime.now(timezone.utc)
    with db.transaction() as conn:
        conversation = conversation_store.get_conversation(conn, conversation_id=conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        listing = bookable_listing(conn, agent_id=conversation["agent_id"], reference=reference)
        viewing, refusal = insert_booking(conn, snapshot=snapshot, conversation=conversation, listing=listing,
                                          starts_at=starts_at, booked_by=booked_by, language=language,
                                          key=idempotency_key, now=now)
    if viewing is None:
        log.info("viewing not booked: conversation=%s outcome=%s", conversation_id, refusal.outcome)
        return refusal
    sends: tuple = ()
    if tell_customer:
        sends = notify_customer(db, redis, providers, snapshot=snapshot, viewing=viewing, message="confirmation",
                                key=f"viewing:{viewing['id']}:confirm", booked_by=booked_by,
                                expected_mode_version=expected_mode_version, with_pin=True)
    if refusal is None and tell_agent:
        sends += (notify_agent(db, redis, providers, snapshot=snapshot, viewing=viewing, status="booked",
                               key=f"viewing:{viewing['id']}:alert:booked"),)
    log.info("viewing %s booked: conversation=%s agent=%s by=%s", viewing["id"], conversation_id,
             viewing["agent_id"], booked_by.split(":")[0])
    return BookingReport("already_booked" if refusal else "booked", viewing["id"], viewing["starts_at"],
                         viewing["reference"], sends=sends)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True)
    p.add_argument("--reference", required=True, help="the listing's reference")
    p.add_argument("--at", required=True, help="the start, YYYY-MM-DDTHH:MM in the agent's time zone")
    p.add_argument("--language", choices=("en", "ar", "arabizi"), default="en", help="of the confirmation")
    p.add_argument("--key", help="idempotency key (default: conversation, listing and time)")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            conversation = conversation_store.require_conversation(conn, conversation_id=args.conversation)
            tz = viewing_store.viewing_agent(conn, agent_id=conversation["agent_id"])["timezone"]
        starts_at = parse_local(args.at, tz)
        return book_viewing(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                            snapshot=load_directives(), conversation_id=args.conversation, reference=args.reference,
                            starts_at=starts_at, booked_by="cli", language=args.language,
                            idempotency_key=args.key or f"cli:{args.conversation}:{args.reference}:{starts_at:%Y%m%d%H%M}")

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
