"""The offline responder: a reply from the persona templates and the agent's listings, no model needed.

Reads: the agent's listings, the conversation's state (the listings shown, the one in focus, the last
question: lib/conversation_state.py, read back from the latest replies), the persona / retrieval /
sending / router directives.
Writes: conversations.preferences (criteria accumulate over turns); the reply records its state in
`generation.state`. Sends nothing: answer_conversation sends what this returns, behind the fence,
and records what a reply promises on the agent's behalf (`Reply.promise`) as a task for the agent.
It keeps the thread: "it", "the second", "the cheaper one", "NH-0033" and a bare "payment plan?"
are about a listing already sent (after a shortlist, a bare question is answered for each listing);
thanks / ok / bye get a short closing; "more", "cheaper", "bigger" move on from what was shown; nothing matching shows the closest by fit. Every figure comes
from a listing row; all wording from the persona directive's templates. It is the embedded default
(no model configured) and the fallback whenever a model fails or its draft does not pass the guards.

usage: python -m execution.offline_reply --conversation 42
"""

from __future__ import annotations

from dataclasses import replace

from execution.lib import (arabic_counts, conversation_store, formatting, listing_answers, listing_fit, property_store,
                           tenant_store)
from execution.lib.conversation_state import (QUESTIONS, State, detect_intent, is_follow_up, is_question, language_of,
                                              load_state, resolve)
from execution.lib.criteria import Criteria, extract
from execution.lib.db import Connection
from execution.lib.directives import Snapshot, localized
from execution.lib.errors import NotFound
from execution.lib.replies import PROMISES, Reply
from execution.property_lookup import remember_preferences, search

TASKS = {**PROMISES, "no_photos": "send_photos"}     # templates that promise the agent will do something
CLOSINGS = {"thanks": "closing_thanks", "ok": "closing_ok", "bye": "closing_bye"}
# Questions answered for every listing of a shortlist at once (photos and the location pin need one listing).
EACH = ("payment_plan", "delivery", "amenities", "availability", "price", "size")
PAGED = {"more": ("more_results_intro", "no_more"), "cheaper": ("cheaper_intro", "no_cheaper"),
         "bigger": ("bigger_intro", "no_bigger")}


def offline_reply(
    conn: Connection, *, conversation: dict, messages: list[dict], snapshot: Snapshot, agent: dict,
) -> Reply:
    """The reply to `messages` (the unanswered customer messages, oldest first), in their language."""
    router, persona = snapshot["incoming_message_router"], snapshot["persona_enforcement"]
    retrieval, sending = snapshot["property_retrieval"], snapshot["message_sending_rules"]
    text = "\n".join(m["body"] or "" for m in messages if m.get("body"))[: router["max_customer_text_chars"]]
    state = load_state(conn, conversation_id=conversation["id"])
    lang = language_of(text, previous=state.language) if text.strip() else state.language or persona["default_language"]
    card_lang, digits, agent_id = ("ar" if lang == "ar" else "en"), sending["arabic_digits"], conversation["agent_id"]
    limit = min(retrieval["max_results"], sending["max_listings_per_reply"])
    used: list[str] = []

    def t(name: str, count: int | None = None, **kw) -> str:
        name = f"{name}_one" if count == 1 and f"{name}_one" in persona["templates"] else name
        used.append(name)
        return localized(persona["templates"][name], lang, gender=agent.get("gender")).format(
            agent_name=agent["name"], agency=agent["agency"], count=count, **kw)

    aliases = property_store.load_aliases(conn, organization_id=conversation["organization_id"])
    said = extract(text, aliases=aliases, tolerance_pct=retrieval["budget_tolerance_pct"])
    prefs = remember_preferences(conn, conversation_id=conversation["id"], criteria=said)
    intent = detect_intent(text, aliases=aliases) if text.strip() else "other"
    parts = [] if state.replied else [t("greeting")]

    def done(kind: str, refs=(), *, now: State = state, pin=None, media=(), criteria=prefs) -> Reply:
        body = "\n\n".join(p for p in parts if p)
        body = arabic_counts.agree(body) if card_lang == "ar" else body
        promise = next((TASKS[name] for name in used if name in TASKS), None)
        return Reply(_fit(body, sending["max_reply_chars"]), lang, kind, tuple(refs), pin, criteria, promise,
                     media=tuple(media), generation={"state": {**now.to_json(), "language": lang}})

    def show(rows: list[dict], kind: str, intro: str, criteria: Criteria = prefs) -> Reply:
        refs = [p["reference"] for p in rows]
        parts.extend([t(intro, count=len(rows)),
                      formatting.short_list(rows, lang=card_lang, arabic_digits=digits, limit=limit)])
        parts.extend(_questions(criteria, retrieval, t) or [t("results_outro")])
        return done(kind, refs, now=State(tuple(refs), refs[0] if len(refs) == 1 else None), criteria=criteria)

    def about(listing: dict, question: str | None) -> Reply:
        ref, now = listing["reference"], State(state.shown, listing["reference"], question)
        if question is None:
            parts.extend([t("listing_intro", reference=ref),
                          formatting.listing_card(listing, lang=card_lang, arabic_digits=digits)])
            pin = formatting.location_pin(listing, lang=card_lang) if sending["send_location_pin"] else None
            return done("detail", [ref], now=now, pin=pin)
        pin = formatting.location_pin(listing, lang=card_lang) \
            if question == "location" and sending["send_location_pin"] else None
        media = [{"kind": "file", "url": url, "file_name": f"{ref}-{i}.jpg"}
                 for i, url in enumerate((listing.get("images") or ())[:3], start=1)] if question == "photos" else []
        parts.append(listing_answers.answer(question, listing, t, lang=card_lang, arabic_digits=digits))
        return done("answer", [ref], now=now, pin=pin, media=media)

    named = bool(said.to_json().keys() - {"language", "reference"})
    if (said.amenities and not said.to_json().keys() - {"language", "reference", "amenities"} and is_question(text)
            and (state.focus or state.shown) and intent in ("search", "unknown", "other")):
        # "does it have a pool?", "feeha garage?": about what was shown, not a new search that lists it again
        intent, named = "amenities", False
    if intent in CLOSINGS and state.replied:
        parts.append(t(CLOSINGS[intent]))
        return done("closing")
    if intent == "greeting" and state.replied:
        parts.append(t("greeting_again"))
        return done("greeting")
    if intent in (*QUESTIONS, "details", "viewing"):
        found = resolve(conn, state=state, text=text, agent_id=agent_id, aliases=aliases)
        if found.how == "unknown_reference":
            parts.append(t("unknown"))
            return done("unknown")
        if found.listing and (found.how != "focus" or not named):
            again = state.asked if intent == "details" and found.how != "focus" and is_follow_up(text) else None
            return about(found.listing, intent if intent in QUESTIONS else again)
        if intent in EACH and len(state.shown) > 1 and not named:
            # "and the down payment?" after a shortlist: the answer for each listing shown, not "which one?"
            rows = property_store.get_properties(conn, agent_id=agent_id, references=state.shown[:limit])
            parts.extend(listing_answers.answer(intent, r, t, lang=card_lang, arabic_digits=digits) for r in rows)
            return done("answer", [r["reference"] for r in rows], now=State(state.shown, None, intent))
        if not named and (state.shown or intent != "availability"):    # "what's available?" is a search
            parts.append(t("which_listing"))
            return done("ask")
    if intent in PAGED and (state.shown or state.focus):
        intro, none_left = PAGED[intent]
        base = property_store.get_properties(conn, agent_id=agent_id,
                                             references=(state.focus,) if state.focus else state.shown)
        wanted, keep, exclude = listing_fit.moved_on(intent, prefs, base)   # a step from what was shown, not stored
        wide = replace(wanted, include_unavailable=wanted.include_unavailable or retrieval["include_unavailable"])
        skip = set(exclude) | (set(state.seen) if intent == "more" else set())
        hits = [h.property for h in search(conn, agent_id=agent_id, criteria=wide, text=None, limit=limit + len(skip))
                if h.reference not in skip][:limit]
        if hits:
            return show(hits, "results", intro, wanted)
        rows = listing_fit.closest(conn, agent_id=agent_id, criteria=wanted, retrieval=retrieval, limit=limit,
                                   exclude=tuple(skip), keep=keep)
        if rows:
            return show(rows, "closest", "closest_results_intro", wanted)
        parts.append(t(none_left, reference=base[0]["reference"] if base else ""))
        return done("no_results", [base[0]["reference"]] if base else [])
    if intent == "unknown" and not named:
        parts.append(t("unknown"))
        return done("unknown")
    if state.shown and not named and state.replied:
        parts.append(t("results_outro"))
        return done("ask")

    if not named and not (prefs.to_json().keys() - {"language", "reference"}):
        parts.extend(_questions(prefs, retrieval, t))
        return done("ask")
    wide = replace(prefs, include_unavailable=prefs.include_unavailable or retrieval["include_unavailable"])
    hits = [h.property for h in search(conn, agent_id=agent_id, criteria=wide, text=text, limit=limit)]
    if hits:
        return show(hits, "results", "results_intro")
    rows = listing_fit.closest(conn, agent_id=agent_id, criteria=prefs, retrieval=retrieval, limit=limit)
    if rows:
        return show(rows, "closest", "closest_results_intro")
    parts.append(t("no_results"))
    parts.extend(_questions(prefs, retrieval, t))
    return done("no_results")


def _questions(prefs: Criteria, retrieval, t) -> list[str]:
    missing = set(prefs.missing())
    asks = [f for f in retrieval["ask_for_missing"] if f in missing][: retrieval["ask_at_most"]]
    return [t(f"ask_{field}") for field in asks]


def _fit(body: str, limit: int) -> str:
    """At most `limit` characters, cut at a line break, never mid-listing."""
    if len(body) <= limit:
        return body
    cut = body.rfind("\n", 0, limit)
    return body[: cut if cut > 0 else limit].rstrip()


def agent_profile(conn: Connection, *, agent_id: int) -> dict:
    row = tenant_store.agent_profile(conn, agent_id=agent_id)
    if row is None:
        raise NotFound(f"agent {agent_id} does not exist")
    return row


def main(argv: list[str] | None = None, *, resources=None) -> int:
    from execution.lib import cli
    from execution.lib.directives import load_directives

    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            conversation = conversation_store.get_conversation(conn, conversation_id=args.conversation)
            if conversation is None:
                raise NotFound(f"conversation {args.conversation} does not exist")
            messages = conversation_store.unanswered_customer_messages(conn, conversation_id=args.conversation)
            return offline_reply(conn, conversation=conversation, messages=messages, snapshot=load_directives(),
                                 agent=agent_profile(conn, agent_id=conversation["agent_id"]))

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
