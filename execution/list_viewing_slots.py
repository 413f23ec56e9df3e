"""The viewing times an agent can still offer for a listing: working hours, notice, blocks, bookings.

Reads: the viewing_rules directive (defaults), the agent (time zone, working hours, own rules), the
listing (its viewing windows; it must be the agent's own and available), viewings and blocked
periods. Writes nothing.

usage: python -m execution.list_viewing_slots --conversation 42 --reference NH-0001 [--from 2026-11-29T00:00 --to 2026-11-30T00:00] [--limit 5]
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from execution.lib import availability, cli, conversation_store, formatting, property_store, viewing_store
from execution.lib.db import Connection
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import BadRequest, NotFound
from execution.viewing_messages import parse_local


def bookable_listing(conn: Connection, *, agent_id: int, reference: str) -> dict:
    """The agent's own listing by reference, if it can be visited (available); else NotFound / BadRequest."""
    listing = property_store.get_property(conn, agent_id=agent_id, reference=reference)
    if listing is None:
        raise NotFound(f"no listing {reference!r} for this agent")
    if listing["status"] != "available":
        raise BadRequest(f"{listing['reference']} is {listing['status']}: it cannot be visited")
    return listing


def list_viewing_slots(conn: Connection, *, snapshot: Snapshot, agent_id: int, listing: dict,
                       now: datetime | None = None, start: datetime | None = None, end: datetime | None = None,
                       limit: int | None = None, except_viewing: int | None = None) -> list[datetime]:
    """Free slot starts for `listing`, earliest first (at most `limit`, default the directive's slots_offered)."""
    directive = snapshot["viewing_rules"]
    agent = viewing_store.viewing_agent(conn, agent_id=agent_id)
    rules = availability.rules_for(directive, agent)
    now = now or datetime.now(timezone.utc)
    lo, hi = start or now, end or now + timedelta(days=rules.horizon_days)
    if lo >= min(hi, now + timedelta(days=rules.horizon_days)):
        return []                                   # a window wholly past the horizon (or empty) has no slots
    booked, blocked = viewing_store.busy(conn, agent_id=agent_id, start=lo - timedelta(hours=6), end=hi,
                                         except_viewing=except_viewing)
    return availability.free_slots(rules, now=now, start=start, end=end, booked=booked, blocked=blocked,
                                   listing_windows=viewing_store.listing_windows(conn, property_id=listing["id"]),
                                   limit=limit or directive["slots_offered"])


def numbered(slots: list[datetime], *, lang: str, timezone_name: str, arabic_digits: bool) -> str:
    """"1. Sunday 29 November, 6:00 pm" lines; the customer answers with a number."""
    return "\n".join(f"{formatting.digits(str(n), lang=lang, arabic_digits=arabic_digits)}. "
                     f"{formatting.when_text(s, lang=lang, timezone=timezone_name, arabic_digits=arabic_digits)}"
                     for n, s in enumerate(slots, 1))


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True)
    p.add_argument("--reference", required=True, help="the listing's reference")
    p.add_argument("--from", dest="start", help="earliest start, in the agent's time zone")
    p.add_argument("--to", dest="end", help="latest start")
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)

    def work(res):
        snapshot = load_directives()
        with res.db.connection() as conn:
            conversation = conversation_store.require_conversation(conn, conversation_id=args.conversation)
            agent = viewing_store.viewing_agent(conn, agent_id=conversation["agent_id"])
            listing = bookable_listing(conn, agent_id=agent["id"], reference=args.reference)
            tz = agent["timezone"]
            slots = list_viewing_slots(conn, snapshot=snapshot, agent_id=agent["id"], listing=listing,
                                       start=args.start and parse_local(args.start, tz),
                                       end=args.end and parse_local(args.end, tz), limit=args.limit)
        return {"reference": listing["reference"], "timezone": tz,
                "slots": [s.astimezone(ZoneInfo(tz)).isoformat() for s in slots]}

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
