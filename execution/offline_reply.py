"""The offline responder: a reply from the persona templates and the agent's listings, no model needed.

Reads: the agent's listings (property_lookup), the persona / retrieval / sending / router directives.
Writes: conversations.preferences (criteria accumulate over turns). Sends nothing:
answer_conversation sends what this returns, behind the fence, and records what a reply promises
on the agent's behalf (`Reply.promise`) as a task for the agent.
Every figure in a reply comes from a listing row found in this turn; all wording comes from the
persona directive's templates. It is the embedded default (no model configured) and the fallback
whenever a model fails or its draft does not pass the guards; generate_ai_response chooses.

usage: python -m execution.offline_reply --conversation 42
"""

from __future__ import annotations

import re
from execution.lib import conversation_store, formatting, property_store, tenant_store
from execution.lib.criteria import Criteria, detect_language, extract
from execution.lib.db import Connection
from execution.lib.directives import Snapshot, localized
from execution.lib.errors import NotFound
from execution.lib.replies import PROMISES, Reply
from execution.lib.text import normalize
from execution.property_lookup import find_listings, remember_preferences

# What a customer asks about a listing already on the table, by the field that answers it.
_QUESTIONS = {
    "payment_plan": r"payment plan|installment|instalment|down ?payment|مقدم|تقسيط|اقساط|قسط|نظام السداد|"
                    r"ta2seet|taseet|a2sat|mo2adam|nezam el sadad",
    "delivery": r"delivery|handover|hand over|when .*ready|ready to move|استلام|تسليم|امتي .*جاهز|estlam|taslem|"
                r"tasleem",
    "amenities": r"amenit|facilit|features|services|مميزات|خدمات|فيها ايه|momayezat|khadamat|fiha eh",
}


def _question(folded: str) -> str | None:
    return next((name for name, pattern in _QUESTIONS.items() if re.search(pattern, folded)), None)


def offline_reply(
    conn: Connection, *, conversation: dict, messages: list[dict], snapshot: Snapshot, agent: dict,
) -> Reply:
    """The reply to `messages` (the unanswered customer messages, oldest first), in their language."""
    router, persona = snapshot["incoming_message_router"], snapshot["persona_enforcement"]
    retrieval, sending = snapshot["property_retrieval"], snapshot["message_sending_rules"]
    text = "\n".join(m["body"] or "" for m in messages if m.get("body"))[: router["max_customer_text_chars"]]
    lang = detect_language(text) if text.strip() else persona["default_language"]
    card_lang = "ar" if lang == "ar" else "en"
    digits = sending["arabic_digits"]

    used: list[str] = []

    def t(name: str, **kw) -> str:
        used.append(name)
        return localized(persona["templates"][name], lang, gender=agent.get("gender")).format(
            agent_name=agent["name"], agency=agent["agency"], **kw)

    aliases = property_store.load_aliases(conn, organization_id=conversation["organization_id"])
    said = extract(text, aliases=aliases, tolerance_pct=retrieval["budget_tolerance_pct"])
    prefs = remember_preferences(conn, conversation_id=conversation["id"], criteria=said)
    parts = [] if conversation_store.has_replied_before(conn, conversation_id=conversation["id"]) else [t("greeting")]

    def done(kind: str, refs=(), pin=None, criteria=prefs) -> Reply:
        body = "\n\n".join(p for p in parts if p)
        promise = next((PROMISES[name] for name in used if name in PROMISES), None)
        return Reply(_fit(body, sending["max_reply_chars"]), lang, kind, tuple(refs), pin, criteria, promise)

    question = _question(normalize(text))
    reference = said.reference or (prefs.reference if question else None)
    if reference:
        try:
            listing = property_store.get_property(conn, agent_id=conversation["agent_id"], reference=reference)
            if listing is None:
                raise NotFound(reference)
        except NotFound:
            parts.append(t("unknown"))
            return done("unknown")
        if question:
            parts.append(_answer(question, listing, t, card_lang, digits))
            return done("answer", [listing["reference"]])
        parts += [t("listing_intro", reference=listing["reference"]),
                  formatting.listing_card(listing, lang=card_lang, arabic_digits=digits)]
        pin = formatting.location_pin(listing, lang=card_lang) if sending["send_location_pin"] else None
        return done("detail", [listing["reference"]], pin)
    if question:
        parts.append(t("which_listing"))
        return done("ask")

    searchable = prefs.property_types or prefs.areas or prefs.listing_type or prefs.bedrooms_min is not None \
        or prefs.price_max is not None or prefs.price_min is not None or prefs.amenities
    if not searchable:
        parts += _questions(prefs, retrieval, t)
        return done("ask")

    limit = min(retrieval["max_results"], sending["max_listings_per_reply"])
    hits, kind = find_listings(conn, agent_id=conversation["agent_id"], criteria=prefs, text=text,
                               retrieval=retrieval, limit=limit)
    if not hits:
        parts.append(t("no_results"))
        parts += _questions(prefs, retrieval, t)
        return done("no_results")
    listings = [h.property for h in hits]
    parts += [t("results_intro" if kind == "results" else "closest_results_intro", count=len(listings)),
              formatting.short_list(listings, lang=card_lang, arabic_digits=digits, limit=limit)]
    parts += _questions(prefs, retrieval, t) or [t("results_outro")]
    if len(listings) == 1:   # the one on the table: follow-up questions are about it
        remember_preferences(conn, conversation_id=conversation["id"],
                             criteria=Criteria(reference=listings[0]["reference"]))
    return done(kind, [p["reference"] for p in listings])


def _answer(question: str, listing: dict, t, card_lang: str, digits: bool) -> str:
    ref = listing["reference"]
    if question == "payment_plan":
        if not listing.get("payment_plan"):
            return t("no_payment_plan", reference=ref)
        plan = listing["payment_plan"]
        if card_lang == "ar":
            plan = formatting.digits(formatting.payment_plan_ar(plan), lang="ar", arabic_digits=digits)
        return t("payment_plan", reference=ref, payment_plan=plan)
    if question == "delivery":
        return t("delivery", reference=ref, delivery=formatting.delivery_text(listing.get("delivery_date"),
                                                                              lang=card_lang, arabic_digits=digits))
    if not listing.get("amenities"):
        return t("no_amenities", reference=ref)
    return t("amenities", reference=ref, amenities=formatting.amenities_text(listing["amenities"], lang=card_lang))


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
