"""The viewing part of a conversation: a request to visit, a choice among offered times, a move, a
cancellation, and the answer to the feedback question. Both responders go through it first.

Reads: the viewing_rules directive, the customer's words (read_when: "Sunday at 6pm", "يوم الحد
بالليل", "bokra ba3d el dohr"), the listing in focus (a reference in the message, else the last one
the assistant showed), the slots the last reply offered (stored on that message's `generation`).
Writes, when `act` (not for a preview): the booking, move or cancellation through book_viewing /
change_viewing (the agent is alerted there), the feedback on the viewing. Returns None when the
messages are not about a viewing, so the responder answers as usual.
Guard: bookings are keyed by the customer's message (`chat:{message id}:{time}`), so answering the
same message again books nothing twice; a time is booked only when it is on the agent's grid and
free, otherwise two or three concrete slots are offered as a numbered list.

usage: python -m execution.viewing_reply --conversation 42    (what it would do; books nothing)
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone

from execution.book_viewing import book_viewing
from execution.change_viewing import cancel_viewing, reschedule_viewing
from execution.lib import cli, conversation_store, formatting, viewing_store
from execution.lib.conversation_state import detect_intent, resolve_listing
from execution.lib.criteria import detect_language
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives, localized
from execution.lib.errors import BadRequest, NotFound
from execution.lib.providers import ProviderRegistry
from execution.lib.replies import Reply
from execution.lib.viewing_intent import CANCEL, MOVE, NOT_CANCEL, NOT_FEEDBACK, QUESTION, VIEW, choice, wants_viewing
from execution.lib.when import read_when
from execution.list_viewing_slots import bookable_listing, list_viewing_slots, numbered
from execution.viewing_messages import arabic_digits, viewing_text

DAY_SLOTS = 96                 # every slot of one day (15-minute slots), to pick the nearest from


def _focus(conn, conversation: dict, text: str) -> dict | None:
    """The listing meant ("NH-0033", "the second", "the one in Maadi", "it"), if it can be visited."""
    listing = resolve_listing(conn, conversation=conversation, text=text, agent_id=conversation["agent_id"])
    if listing is None:
        return None
    try:
        return bookable_listing(conn, agent_id=conversation["agent_id"], reference=listing["reference"])
    except (NotFound, BadRequest):
        return None


def viewing_reply(db: Database, redis, providers: ProviderRegistry | None, *, conversation: dict,
                  messages: list[dict], snapshot: Snapshot, agent: dict, act: bool = True,
                  now: datetime | None = None) -> Reply | None:
    """The viewing flow's reply, recorded as written by it (backend `viewing`) with the listings it quotes."""
    reply = _viewing_reply(db, redis, providers, conversation=conversation, messages=messages, snapshot=snapshot,
                           agent=agent, act=act, now=now)
    return reply and reply.with_generation(backend="viewing", references=list(reply.references))


def _viewing_reply(db: Database, redis, providers: ProviderRegistry | None, *, conversation: dict,
                   messages: list[dict], snapshot: Snapshot, agent: dict, act: bool, now: datetime | None) -> Reply | None:
    text = "\n".join(m["body"] or "" for m in messages if m.get("body")).strip()
    if not text:
        return None
    rules, now = snapshot["viewing_rules"], now or datetime.now(timezone.utc)
    last_id = messages[-1]["id"]
    timing = agent      # the agent's profile carries the scheduling columns (time zone, hours, own rules)
    with db.connection() as conn:
        last = viewing_store.last_ai_generation(conn, conversation_id=conversation["id"])
        asked = viewing_store.awaiting_feedback(conn, conversation_id=conversation["id"],
                                                within_hours=rules["feedback_window_hours"], first_id=messages[0]["id"])
        active = viewing_store.viewings_for_conversation(conn, agent_id=conversation["agent_id"],
                                                         conversation_id=conversation["id"], active_only=True)
    # "2" or "٢" says nothing of a language: keep the one the times were offered in.
    lang = detect_language(text) if re.search(r"[^\W\d_]", text) else \
        ((last or {}).get("viewing_offer") or {}).get("language") or detect_language(text)

    @functools.cache
    def focus() -> dict | None:
        # The listing meant costs the conversation's state and the area names: read only when a step needs it.
        with db.connection() as conn:
            return _focus(conn, conversation, text)

    def say(name: str, **kw) -> str:
        return localized(rules["messages"][name], lang, gender=agent.get("gender")).format(
            agent_name=agent["name"], **kw)

    def offer(listing: dict, start=None, end=None, action="book", viewing_id=None, message="offer_slots",
              near=None) -> Reply:
        """The free times in [start, end), or those of `near`'s day nearest to it (an off-grid time, or "Sunday
        at 4", a window of no length: 4 pm itself when free); when the time asked for has none, that day's
        nearest times, then the earliest of any day, saying that the time asked for had none (`none_then`)."""
        if near is None and start is not None and start == end:
            near = start
        with db.connection() as conn:
            def free(lo=None, hi=None, limit=None):
                return list_viewing_slots(conn, snapshot=snapshot, agent_id=conversation["agent_id"], listing=listing,
                                          now=now, start=lo, end=hi, except_viewing=viewing_id, limit=limit)

            def nearest(moment):
                day = moment.astimezone(viewing_store.zone(timing)).replace(hour=0, minute=0, second=0, microsecond=0)
                around = sorted(free(day, day + timedelta(days=1), limit=DAY_SLOTS), key=lambda s: abs(s - moment))
                return sorted(around[:rules["slots_offered"]])

            slots = nearest(near) if near is not None else free(start, end)
            if not slots and (start is not None or near is not None):
                whole_days = start is not None and end is not None and end - start >= timedelta(days=1)
                slots = ([] if whole_days else nearest(near if near is not None else start)) or free()
                message = "none_then" if message == "offer_slots" else message
        if not slots:
            return Reply(say("no_slots", reference=listing["reference"]), lang, "viewing",
                         references=(listing["reference"],), promise="arrange_viewing")
        listed = numbered(slots, lang=lang, timezone_name=timing["timezone"],
                          arabic_digits=arabic_digits(snapshot, timing))
        return Reply(say(message, reference=listing["reference"], slots=listed), lang, "viewing",
                     references=(listing["reference"],)).with_generation(viewing_offer={
                         "action": action, "reference": listing["reference"], "viewing_id": viewing_id,
                         "language": lang,
                         "slots": [s.isoformat() for s in slots]})

    def book(listing: dict, at: datetime, action="book", viewing_id=None) -> Reply:
        if not act:
            return Reply(f"[would {action} {listing['reference']} at {at.isoformat()}]", lang, "viewing")
        if action == "move":
            report = reschedule_viewing(db, redis, providers, snapshot=snapshot, agent_id=conversation["agent_id"],
                                        viewing_id=viewing_id, starts_at=at, actor="assistant", now=now,
                                        tell_customer=False)
        else:
            report = book_viewing(db, redis, providers, snapshot=snapshot, conversation_id=conversation["id"],
                                  reference=listing["reference"], starts_at=at, booked_by="assistant", language=lang,
                                  idempotency_key=f"chat:{last_id}:{at:%Y%m%d%H%M}", now=now, tell_customer=False)
        if report.outcome == "slot_taken":
            return offer(listing, action=action, viewing_id=viewing_id, message="slot_taken")
        if report.outcome == "not_bookable":      # off the grid or out of hours: that day's nearest free times
            return offer(listing, action=action, viewing_id=viewing_id, near=at)
        with db.connection() as conn:
            viewing = viewing_store.get_viewing(conn, agent_id=conversation["agent_id"], viewing_id=report.viewing_id)
        name = "moved" if action == "move" else "confirmation"
        pin = formatting.location_pin(viewing, lang="ar" if lang == "ar" else "en") if action == "book" else None
        return Reply(viewing_text(snapshot, viewing, {**timing, "gender": agent.get("gender")}, name, lang=lang),
                     lang, "viewing", references=(viewing["reference"],), pin=pin).with_generation(
                         viewing={"id": viewing["id"], "status": report.outcome})

    # 1. The answer to the feedback question: the first message after it, unless it asks something.
    if asked is not None and not wants_viewing(text) and not QUESTION.search(text) \
            and detect_intent(text) not in NOT_FEEDBACK:
        if act:
            with db.connection() as conn:
                viewing_store.store_feedback(conn, viewing_id=asked["id"], text=text)
        return Reply(say("feedback_thanks"), lang, "viewing").with_generation(feedback_for=asked["id"])
    # 2. A choice among the times the last reply offered.
    offered = (last or {}).get("viewing_offer")
    if offered:
        slots = [datetime.fromisoformat(s) for s in offered["slots"]]
        n = choice(text, len(slots))
        when = read_when(text, now=now.astimezone(slots[0].tzinfo))
        picked = slots[n - 1] if n else next((s for s in slots if when.kind == "exact" and when.start == s), None)
        if picked is not None:
            with db.connection() as conn:
                listing = bookable_listing(conn, agent_id=conversation["agent_id"], reference=offered["reference"])
            return book(listing, picked, offered["action"], offered.get("viewing_id"))
    # 3. Cancel or move the viewing already booked here.
    if active and CANCEL.search(text) and not NOT_CANCEL.search(text):
        v = active[-1]
        if act:
            cancel_viewing(db, redis, providers, snapshot=snapshot, agent_id=conversation["agent_id"],
                           viewing_id=v["id"], actor="assistant", reason="the customer asked", tell_customer=False)
        return Reply(viewing_text(snapshot, v, {**timing, "gender": agent.get("gender")}, "cancelled", lang=lang),
                     lang, "viewing", references=(v["reference"],))
    visit = VIEW.search(text)
    if not active and not visit:
        return None            # no viewing here to change and no request to visit: not the viewing flow's
    when = read_when(text, now=now.astimezone(viewing_store.zone(timing)))
    if active and (MOVE.search(text) or (when.kind != "none" and not visit and focus() is None)):
        v = active[-1]
        with db.connection() as conn:
            listing = bookable_listing(conn, agent_id=conversation["agent_id"], reference=v["reference"])
        if when.kind == "exact" and not when.ambiguous:
            return book(listing, when.start, "move", v["id"])
        return offer(listing, when.start, when.end, action="move", viewing_id=v["id"])
    # 4. A request to visit.
    if not visit:
        return None
    listing = focus()
    if listing is None:
        return Reply(say("which_listing"), lang, "viewing")
    if when.kind == "exact" and not when.ambiguous:
        return book(listing, when.start)
    if when.kind in ("day", "part", "range", "exact", "time"):     # "Sunday at 4" (am or pm?): its nearest
        return offer(listing, when.start, when.end)
    return offer(listing)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True)
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            conversation = conversation_store.require_conversation(conn, conversation_id=args.conversation)
            messages = conversation_store.unanswered_customer_messages(conn, conversation_id=args.conversation)
            agent = viewing_store.viewing_agent(conn, agent_id=conversation["agent_id"])
        reply = viewing_reply(res.db, None, None, conversation=conversation, messages=messages,
                              snapshot=load_directives(), agent=agent, act=False)
        return reply or {"viewing": False}

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
