"""Find an agent's own listings for what a customer asked: filters, area aliases, text ranking, reasons.

Reads: properties, location_areas, location_aliases (only the given agent's listings, always), and
the property_retrieval directive, applied exactly as live replies apply it (budget tolerance, result
count, unavailable listings, what to relax when nothing matches).
Writes: conversations.preferences when a conversation is given (criteria accumulate over turns).
Guard: the preferences row is locked FOR UPDATE while it is merged.

usage: python -m execution.property_lookup --agent EMAIL --text "3 bedroom flat in New Cairo under 8M"
       python -m execution.property_lookup --agent EMAIL --reference NH-0001 [--lang ar]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

from execution.lib import cli, conversation_store, formatting, property_store, tenant_store
from execution.lib import criteria as vocabulary
from execution.lib.criteria import Criteria, extract, merge
from execution.lib.db import Connection, transaction
from execution.lib.directives import load_directives
from execution.lib.errors import NotFound
from execution.lib.text import normalize

MAX_TERMS = 12
# Words the extractor turns into filters, and filler: the text ranking ignores them.
_NOISE = {
    word
    for phrase in (*vocabulary.FILLER.split(), *vocabulary.STRUCTURED)
    for word in normalize(phrase).split()
}


@dataclass(frozen=True)
class Hit:
    reference: str
    property: dict
    reasons: tuple[str, ...]
    rank: float


def search_terms(text: str | None) -> list[str]:
    """The content words of free text, normalised, for ranking: no numbers, no filler."""
    if not text:
        return []
    words = re.findall(r"[^\W_]+", normalize(text))
    out = [w for w in words if len(w) >= 3 and not w.isdigit() and w not in _NOISE]
    return list(dict.fromkeys(out))[:MAX_TERMS]


def _reasons(p: dict, c: Criteria, matched_terms: list[str]) -> tuple[str, ...]:
    out = []
    if c.property_types:
        out.append(f"type {p['property_type']}")
    if c.listing_type:
        out.append(f"for {p['listing_type']}")
    if c.areas and p.get("area_name"):
        out.append(f"in {p['area_name']}")
    if c.bedrooms_min is not None or c.bedrooms_max is not None:
        out.append(f"{p['bedrooms']} bedrooms")
    if c.price_min is not None or c.price_max is not None:
        bounds = [f"≥ {c.price_min:,}" if c.price_min is not None else "", f"≤ {c.price_max:,}" if c.price_max is not None else ""]
        out.append(f"price {p['currency']} {Decimal(p['price']):,.0f} within budget {' '.join(b for b in bounds if b)}")
    if c.size_min is not None or c.size_max is not None:
        out.append(f"{p['area_sqm']} m²")
    for wanted in c.amenities:
        have = next((a for a in p["amenities"] if wanted in a), None)
        out.append(f"has {have}")
    if matched_terms:
        out.append("mentions " + ", ".join(matched_terms))
    if p["status"] != "available":
        out.append(f"status {p['status']}")
    return tuple(out) or ("one of the agent's listings",)


def search(
    conn: Connection, *, agent_id: int, criteria: Criteria, text: str | None = None, limit: int = 5
) -> list[Hit]:
    """The agent's listings matching `criteria`, ranked by `text`; each hit says why it matched."""
    rows = property_store.search_properties(
        conn,
        agent_id=agent_id,
        statuses=["available", "reserved", "sold"] if criteria.include_unavailable else ["available"],
        types=list(criteria.property_types),
        listing_type=criteria.listing_type,
        areas=list(criteria.areas),
        bedrooms_min=criteria.bedrooms_min,
        bedrooms_max=criteria.bedrooms_max,
        price_min=criteria.price_min,
        price_max=criteria.price_max,
        size_min=criteria.size_min,
        size_max=criteria.size_max,
        amenities=list(criteria.amenities),
        terms=search_terms(text),
        limit=max(1, min(limit, 50)),
    )
    return [
        Hit(r["reference"], r, _reasons(r, criteria, list(r["matched_terms"])), float(r["rank"]))
        for r in rows
    ]


def find_listings(conn: Connection, *, agent_id: int, criteria: Criteria, text: str | None, retrieval,
                  limit: int) -> tuple[list[Hit], str]:
    """Search as the property_retrieval directive says; ("results" | "closest", hits) after relaxing."""
    criteria = replace(criteria, include_unavailable=criteria.include_unavailable or retrieval["include_unavailable"])
    hits = search(conn, agent_id=agent_id, criteria=criteria, text=text, limit=limit)
    kind = "results"
    for relax in retrieval["relax_when_empty"]:
        if hits:
            break
        criteria, kind = _relaxed(criteria, relax), "closest"
        hits = search(conn, agent_id=agent_id, criteria=criteria, text=text, limit=limit)
    return hits, kind


def _relaxed(c: Criteria, what: str) -> Criteria:
    return {
        "amenities": lambda: replace(c, amenities=()),
        "size": lambda: replace(c, size_min=None, size_max=None),
        "bedrooms": lambda: replace(c, bedrooms_min=None, bedrooms_max=None),
        "budget": lambda: replace(c, price_min=None, price_max=None),
        "type": lambda: replace(c, property_types=()),
    }[what]()


def get_property(conn: Connection, *, agent_id: int, reference: str) -> dict:
    """One of the agent's listings by reference (any case); NotFound for anyone else's."""
    row = property_store.get_property(conn, agent_id=agent_id, reference=reference.strip())
    if row is None:
        raise NotFound(f"no listing {reference!r} for this agent")
    return row


def remember_preferences(conn: Connection, *, conversation_id: int, criteria: Criteria) -> Criteria:
    """Merge what a message stated into the conversation's preferences and return the result."""
    with transaction(conn):
        stored = conversation_store.lock_preferences(conn, conversation_id=conversation_id)
        if stored is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        merged = merge(Criteria.from_json(stored), criteria)
        conversation_store.set_preferences(conn, conversation_id=conversation_id, preferences=merged.to_json())
    return merged


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email; only their listings are searched")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a customer message to read criteria from")
    what.add_argument("--reference", help="show one listing")
    p.add_argument("--limit", type=int, default=None, help="at most this many (default: as replies show)")
    p.add_argument("--lang", choices=("en", "ar"), default=None, help="language of the formatted reply")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            agent = tenant_store.agent_by_email(conn, email=args.agent)
            if agent is None:
                raise NotFound(f"no agent {args.agent}")
            if args.reference:
                row = get_property(conn, agent_id=agent["id"], reference=args.reference)
                return {"property": row, "card": formatting.listing_card(row, lang=args.lang or "en")}
            snapshot = load_directives()
            retrieval = snapshot["property_retrieval"]
            limit = args.limit or min(retrieval["max_results"],
                                      snapshot["message_sending_rules"]["max_listings_per_reply"])
            aliases = property_store.load_aliases(conn, organization_id=agent["organization_id"])
            criteria = extract(args.text, aliases=aliases, tolerance_pct=retrieval["budget_tolerance_pct"])
            hits, kind = find_listings(conn, agent_id=agent["id"], criteria=criteria, text=args.text,
                                       retrieval=retrieval, limit=limit)
        lang = args.lang or ("ar" if criteria.language == "ar" else "en")
        return {
            "criteria": criteria.to_json(),
            "evidence": list(criteria.evidence),
            "missing": list(criteria.missing()),
            "kind": kind,
            "hits": [{"reference": h.reference, "reasons": list(h.reasons)} for h in hits],
            "reply": formatting.short_list([h.property for h in hits], lang=lang),
        }

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
