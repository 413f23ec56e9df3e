"""The viewing tools a model may call: free times, book, move, cancel — for the conversation's own agent.

Reads: the viewing_rules directive through list_viewing_slots / book_viewing, the conversation's own
viewings. Writes (only when the reply is for real, `ctx.act`): the booking, move or cancellation
through book_viewing / change_viewing; the customer's confirmation is the model's reply itself and
the agent is alerted by answer_conversation once the reply is sent (`ctx.viewing`).
Guard: no tool takes an agent or a conversation; a listing must be the agent's own and available,
a time one of the agent's free slots (else the free ones come back as the error result); a viewing
to move or cancel is looked up among this conversation's own. Bookings are keyed by the customer's
message, so a regenerated reply books nothing twice.

usage: python -m execution.viewing_tools --list    (prints the tool definitions)
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from execution.book_viewing import book_viewing
from execution.change_viewing import cancel_viewing, reschedule_viewing
from execution.lib import cli, formatting, viewing_store
from execution.lib.errors import BadRequest, NotFound
from execution.lib.llm import ToolSpec
from execution.lib.tool_schema import ToolInputError
from execution.list_viewing_slots import bookable_listing, list_viewing_slots

_REFERENCE = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"}
_TIME = {"type": "string", "maxLength": 40, "description": "ISO 8601 with offset, exactly as a slot was given"}

VIEWING_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("list_viewing_slots", "Free viewing times for one of the agent's listings, earliest first, each with "
             "`start` (to book with) and `text` (how to say it to the customer). Optional window in ISO 8601.", {
                 "type": "object", "additionalProperties": False, "required": ["reference"],
                 "properties": {"reference": _REFERENCE, "from": _TIME, "to": _TIME}}),
    ToolSpec("book_viewing", "Book a viewing at a free time from list_viewing_slots. The customer's confirmation "
             "(date, address, pin) is your reply: say the time as `text` gives it.", {
                 "type": "object", "additionalProperties": False, "required": ["reference", "start"],
                 "properties": {"reference": _REFERENCE, "start": _TIME}}),
    ToolSpec("reschedule_viewing", "Move this customer's booked viewing to another free time.", {
        "type": "object", "additionalProperties": False, "required": ["start"],
        "properties": {"reference": _REFERENCE, "start": _TIME}}),
    ToolSpec("cancel_viewing", "Cancel this customer's booked viewing.", {
        "type": "object", "additionalProperties": False, "properties": {"reference": _REFERENCE}}),
)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ToolInputError(f"{text!r} is not an ISO 8601 time; use a slot's `start`") from None
    if moment.tzinfo is None:
        raise ToolInputError("give the time with its offset, exactly as the slot's `start`")
    return moment


def _slots(ctx, listing: dict, **kw) -> list[dict]:
    with ctx.db.connection() as conn:
        tz = viewing_store.viewing_agent(conn, agent_id=ctx.agent_id)["timezone"]
        found = list_viewing_slots(conn, snapshot=ctx.snapshot, agent_id=ctx.agent_id, listing=listing, **kw)
    return [{"start": s.isoformat(), "text": formatting.when_text(s, lang=ctx.language, timezone=tz,
                                                                   arabic_digits=ctx.arabic_digits)} for s in found]


def _listing(ctx, reference: str) -> dict:
    with ctx.db.connection() as conn:
        try:
            listing = bookable_listing(conn, agent_id=ctx.agent_id, reference=reference)
        except (NotFound, BadRequest) as exc:
            raise ToolInputError(str(exc)) from None
    ctx.retrieved[listing["reference"].upper()] = listing
    return listing


def _own_viewing(ctx, reference: str | None) -> dict:
    with ctx.db.connection() as conn:
        active = viewing_store.viewings_for_conversation(conn, agent_id=ctx.agent_id,
                                                         conversation_id=ctx.conversation["id"], active_only=True)
    matching = [v for v in active if reference is None or v["reference"].upper() == reference.upper()]
    if not matching:
        raise ToolInputError("this customer has no booked viewing" + (f" of {reference}" if reference else ""))
    return matching[-1]


def list_slots(ctx, args: dict) -> dict:
    listing = _listing(ctx, args["reference"])
    window = {k: _time(args[a]) for k, a in (("start", "from"), ("end", "to")) if args.get(a)}
    return {"reference": listing["reference"], "slots": _slots(ctx, listing, **window)}


def _outcome(ctx, report, listing: dict) -> dict:
    if report.outcome in ("slot_taken", "not_bookable"):
        raise ToolInputError(json.dumps({"not booked": report.reason or "that time was just taken",
                                         "free": _slots(ctx, listing)}, ensure_ascii=False))
    ctx.viewing = {"id": report.viewing_id, "status": report.outcome}
    return {report.outcome: True, "viewing": report.viewing_id, "reference": listing["reference"],
            "start": report.starts_at.isoformat() if report.starts_at else None}


def book(ctx, args: dict) -> dict:
    listing, at = _listing(ctx, args["reference"]), _time(args["start"])
    if not ctx.act:
        return {"booked": "not in a preview", "reference": listing["reference"], "start": at.isoformat()}
    report = book_viewing(ctx.db, None, None, snapshot=ctx.snapshot, conversation_id=ctx.conversation["id"],
                          reference=listing["reference"], starts_at=at, booked_by="assistant", language=ctx.language,
                          idempotency_key=f"chat:{ctx.message_id}:{at:%Y%m%d%H%M}", tell_customer=False,
                          tell_agent=False)
    return _outcome(ctx, report, listing)


def reschedule(ctx, args: dict) -> dict:
    viewing, at = _own_viewing(ctx, args.get("reference")), _time(args["start"])
    listing = _listing(ctx, viewing["reference"])
    if not ctx.act:
        return {"moved": "not in a preview", "start": at.isoformat()}
    report = reschedule_viewing(ctx.db, None, None, snapshot=ctx.snapshot, agent_id=ctx.agent_id,
                                viewing_id=viewing["id"], starts_at=at, actor="assistant", tell_customer=False,
                                tell_agent=False, now=datetime.now(timezone.utc))
    return _outcome(ctx, report, listing)


def cancel(ctx, args: dict) -> dict:
    viewing = _own_viewing(ctx, args.get("reference"))
    if ctx.act:
        cancel_viewing(ctx.db, None, None, snapshot=ctx.snapshot, agent_id=ctx.agent_id, viewing_id=viewing["id"],
                       actor="assistant", reason="the customer asked", tell_customer=False, tell_agent=False)
        ctx.viewing = {"id": viewing["id"], "status": "cancelled"}
    return {"cancelled": True, "reference": viewing["reference"]}


VIEWING_HANDLERS = {"list_viewing_slots": list_slots, "book_viewing": book, "reschedule_viewing": reschedule,
                    "cancel_viewing": cancel}


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--list", action="store_true", required=True, help="print the tool definitions")
    p.parse_args(argv)
    print(json.dumps([{"name": s.name, "description": s.description, "input_schema": s.input_schema}
                      for s in VIEWING_SPECS], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
