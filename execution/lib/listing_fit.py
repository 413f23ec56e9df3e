"""The closest listings when nothing matches exactly, ranked by how well each fits what was asked.

`closest(conn, agent_id=…, criteria=…, retrieval=…)` searches again with what the property_retrieval
directive allows to be relaxed (`relax_when_empty`) left out, and a type widened to its near types
(a twin house or a townhouse for a villa, a duplex for an apartment: offered as what they are), then
orders the candidates by `misfit`: rooms away from the count asked, the share of price over (or
under) the budget, a near or another type, size outside the range, amenities missing, another area.
Price is only the tie-break. `moved_on(intent, criteria, shown)` is the search a customer means by
"more", "cheaper" or "bigger" after seeing `shown`. Reads only.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from execution.lib import property_store
from execution.lib.criteria import Criteria
from execution.lib.db import Connection

CANDIDATES = 50
NEAR_TYPES = {
    "villa": ("twin house", "townhouse"),
    "twin house": ("villa", "townhouse"),
    "townhouse": ("twin house", "villa"),
    "apartment": ("duplex", "penthouse"),
    "duplex": ("apartment", "penthouse"),
    "penthouse": ("duplex", "apartment"),
    "studio": ("apartment",),
    "chalet": (),
}


def near_types(types: tuple[str, ...]) -> tuple[str, ...]:
    """The types asked for, then their near types."""
    return tuple(dict.fromkeys((*types, *(n for t in types for n in NEAR_TYPES.get(t, ())))))


def misfit(p: dict, c: Criteria, *, area_ids: set[int] = frozenset()) -> float:
    """How far a listing is from what was asked: 0 fits exactly; one room off counts 1, 10 % over budget 1."""
    score = 0.0
    if c.property_types and p["property_type"] not in c.property_types:
        score += 1.5 if p["property_type"] in near_types(c.property_types) else 4
    beds = p.get("bedrooms") or 0
    if c.bedrooms_min is not None and beds < c.bedrooms_min:
        score += c.bedrooms_min - beds
    if c.bedrooms_max is not None and beds > c.bedrooms_max:
        score += beds - c.bedrooms_max
    price = Decimal(p["price"])
    if c.price_max is not None and price > c.price_max:
        score += float(price / c.price_max - 1) * 10
    if c.price_min is not None and price < c.price_min:
        score += float(1 - price / c.price_min) * 10
    size = Decimal(p["area_sqm"]) if p.get("area_sqm") is not None else None
    if size is not None and c.size_max is not None and size > c.size_max:
        score += float(size / c.size_max - 1) * 5
    if size is not None and c.size_min is not None and size < c.size_min:
        score += float(1 - size / c.size_min) * 5
    have = " ".join(p.get("amenities") or ())
    score += 0.5 * sum(1 for wanted in c.amenities if wanted not in have)
    if area_ids and p.get("area_id") not in area_ids:
        score += 2
    return round(score, 6)


def _price_gap(p: dict, c: Criteria) -> Decimal:
    target = c.price_max if c.price_max is not None else c.price_min
    return abs(Decimal(p["price"]) - target) if target is not None else Decimal(0)


def relaxed(c: Criteria, relax: list[str], *, keep: tuple[str, ...] = ()) -> Criteria:
    """`c` without what may be relaxed (except `keep`); a type becomes itself and its near types."""
    out = c
    for what in (r for r in relax if r not in keep):
        out = {
            "amenities": lambda o: replace(o, amenities=()),
            "size": lambda o: replace(o, size_min=None, size_max=None),
            "bedrooms": lambda o: replace(o, bedrooms_min=None, bedrooms_max=None),
            "budget": lambda o: replace(o, price_min=None, price_max=None),
            "type": lambda o: replace(o, property_types=()),
        }[what](out)
    return replace(out, property_types=near_types(out.property_types))


def closest(conn: Connection, *, agent_id: int, criteria: Criteria, retrieval, limit: int,
            exclude: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> list[dict]:
    """Up to `limit` listings nearest to `criteria`, best fit first, none of `exclude`."""
    wide = relaxed(criteria, list(retrieval["relax_when_empty"]), keep=keep)
    include_unavailable = criteria.include_unavailable or retrieval["include_unavailable"]
    rows = property_store.search_properties(
        conn, agent_id=agent_id,
        statuses=["available", "reserved", "sold"] if include_unavailable else ["available"],
        types=list(wide.property_types), listing_type=wide.listing_type, areas=list(wide.areas),
        bedrooms_min=wide.bedrooms_min, bedrooms_max=wide.bedrooms_max, price_min=wide.price_min,
        price_max=wide.price_max, size_min=wide.size_min, size_max=wide.size_max, amenities=list(wide.amenities),
        limit=CANDIDATES)
    area_ids = {a["id"] for a in property_store.areas_by_slug(conn, slugs=list(criteria.areas))} \
        if criteria.areas else set()
    skip = {r.upper() for r in exclude}
    rows = [r for r in rows if r["reference"].upper() not in skip]
    rows.sort(key=lambda r: (misfit(r, criteria, area_ids=area_ids), _price_gap(r, criteria), r["reference"]))
    return rows[:limit]


def moved_on(intent: str, prefs: Criteria, base: list[dict]) -> tuple[Criteria, tuple[str, ...], tuple[str, ...]]:
    """(criteria, what closest() must not relax, listings not to show again) for more / cheaper / bigger."""
    shown = tuple(p["reference"] for p in base)
    if intent == "more" or not base:
        return prefs, (), shown
    first = base[0]
    like = replace(prefs, listing_type=prefs.listing_type or first["listing_type"],
                   property_types=prefs.property_types or tuple(dict.fromkeys(p["property_type"] for p in base)))
    if intent == "cheaper":
        below = int(min(Decimal(p["price"]) for p in base)) - 1
        low = like.price_min if like.price_min is not None and like.price_min <= below else None
        return replace(like, price_min=low, price_max=below), ("budget",), shown
    sizes = [Decimal(p["area_sqm"]) for p in base if p.get("area_sqm") is not None]
    if sizes:
        return replace(like, size_min=int(max(sizes)) + 1, size_max=None, bedrooms_max=None), ("size",), shown
    beds = max(p.get("bedrooms") or 0 for p in base) + 1
    return replace(like, bedrooms_min=beds, bedrooms_max=None), ("bedrooms",), shown

