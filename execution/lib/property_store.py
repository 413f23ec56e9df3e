"""SQL for properties and location aliases: fixed statements with parameters, always one agent's rows."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from psycopg2.extras import execute_values

from execution.lib.db import Connection
from execution.lib.listings import Listing
from execution.lib.text import normalize

PROPERTY_COLUMNS = """
    p.id, p.organization_id, p.agent_id, p.reference, p.project_name, p.developer_name, p.property_type,
    p.listing_type, p.city, p.district, p.district_ar, p.area_id, p.bedrooms, p.bathrooms, p.area_sqm,
    p.price, p.currency, p.payment_plan, p.delivery_date, p.amenities, p.description, p.status,
    p.latitude, p.longitude, p.images, p.created_at, p.updated_at
"""

# The columns an upsert writes, in order; the listing's own fields as the import names its columns.
_WRITTEN = ("project_name", "developer_name", "property_type", "listing_type", "city", "district", "district_ar",
            "area_id", "bedrooms", "bathrooms", "area_sqm", "price", "currency", "payment_plan", "delivery_date",
            "amenities", "description", "status", "latitude", "longitude", "images")
# An import file's column → the properties columns it sets (the area follows the district columns: a
# sheet with a city but no district keeps the area its kept district gave).
FILE_COLUMNS = {
    "project_name": ("project_name",), "developer_name": ("developer_name",), "property_type": ("property_type",),
    "listing_type": ("listing_type",), "city": ("city",), "district": ("district", "area_id"),
    "district_ar": ("district_ar", "area_id"), "bedrooms": ("bedrooms",), "bathrooms": ("bathrooms",),
    "area_sqm": ("area_sqm",), "price": ("price",), "currency": ("currency",), "payment_plan": ("payment_plan",),
    "delivery": ("delivery_date",), "amenities": ("amenities",), "description": ("description",),
    "status": ("status",), "latitude": ("latitude", "longitude"), "longitude": ("latitude", "longitude"),
    "image_url": ("images",),
}
_UPSERTS: dict[frozenset, str] = {}


def _upsert_sql(columns: frozenset) -> str:
    """INSERT … ON CONFLICT that updates `columns` of an existing listing and leaves the others as they are
    (a price-only sheet must not clear the payment plans, the photos or a sold listing's status)."""
    sql = _UPSERTS.get(columns)
    if sql is None:
        kept = [c for c in _WRITTEN if c in columns]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in kept)
        old = ", ".join(f"p.{c}" for c in kept)
        new = ", ".join(f"EXCLUDED.{c}" for c in kept)
        sql = _UPSERTS[columns] = f"""
    INSERT INTO properties AS p (organization_id, agent_id, reference, {", ".join(_WRITTEN)})
    VALUES %s
    ON CONFLICT (agent_id, reference) DO UPDATE SET {sets}, updated_at = now()
    WHERE ROW({old}) IS DISTINCT FROM ROW({new})
    RETURNING p.reference, (p.xmax = 0) AS inserted
"""
    return sql


@dataclass(frozen=True)
class Alias:
    normalized: str
    area_id: int
    slug: str
    name_en: str
    name_ar: str


_ALIASES_KEEP = 256
_aliases_lock = threading.Lock()
_aliases: dict[int | None, tuple[tuple, tuple[Alias, ...]]] = {}   # organization → (version, aliases)


def load_aliases(conn: Connection, *, organization_id: int | None) -> list[Alias]:
    """Every alias everyone shares plus the organization's own, longest first (so longer names win).

    Read on every reply, changed a few times a year: the list is kept per process and read again only
    when its digest (computed by the database over every row) changed, so a new or edited alias counts
    at once in every process while a reply pays for one small aggregate instead of some hundred rows.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) AS n,
                   md5(coalesce(string_agg(concat_ws(':', l.id, l.alias_normalized, a.id, a.slug, a.name_en,
                                                     a.name_ar), '|' ORDER BY l.id), '')) AS digest
              FROM location_aliases l JOIN location_areas a ON a.id = l.area_id
             WHERE l.organization_id IS NULL OR l.organization_id = %s
            """,
            (organization_id,),
        )
        row = cur.fetchone()
        version = (row["n"], row["digest"])
        with _aliases_lock:
            kept = _aliases.get(organization_id)
        if kept is not None and kept[0] == version:
            return list(kept[1])        # the caller's own list: the kept one is never changed
        cur.execute(
            """
            SELECT l.alias_normalized, a.id AS area_id, a.slug, a.name_en, a.name_ar
              FROM location_aliases l JOIN location_areas a ON a.id = l.area_id
             WHERE l.organization_id IS NULL OR l.organization_id = %s
             ORDER BY length(l.alias_normalized) DESC, l.alias_normalized
            """,
            (organization_id,),
        )
        aliases = tuple(Alias(r["alias_normalized"], r["area_id"], r["slug"], r["name_en"], r["name_ar"]) for r in cur)
    with _aliases_lock:
        if len(_aliases) >= _ALIASES_KEEP:
            _aliases.clear()
        _aliases[organization_id] = (version, aliases)
    return list(aliases)


def add_alias(conn: Connection, *, organization_id: int, area_id: int, alias: str, language: str) -> bool:
    """Add an organization's own name for an area; False when the organization already has it."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO location_aliases (area_id, organization_id, alias, language) VALUES (%s, %s, %s, %s)
            ON CONFLICT (COALESCE(organization_id, 0), alias_normalized) DO NOTHING
            RETURNING id
            """,
            (area_id, organization_id, alias, language),
        )
        if cur.fetchone() is None:
            return False
        # Listings already filed under that name become searchable by area at once.
        cur.execute(
            """
            UPDATE properties SET area_id = %s, updated_at = now()
             WHERE organization_id = %s AND area_id IS NULL
               AND normalize_text(%s) IN (normalize_text(district), normalize_text(district_ar), normalize_text(city))
            """,
            (area_id, organization_id, alias),
        )
        return True


def listing_values(listing: Listing, area_id: int | None) -> dict:
    """A listing as the properties columns an upsert writes (_WRITTEN), in the database's own types."""
    x = listing
    return {"project_name": x.project_name, "developer_name": x.developer_name, "property_type": x.property_type,
            "listing_type": x.listing_type, "city": x.city, "district": x.district, "district_ar": x.district_ar,
            "area_id": area_id, "bedrooms": x.bedrooms, "bathrooms": x.bathrooms, "area_sqm": x.area_sqm,
            "price": x.price, "currency": x.currency, "payment_plan": x.payment_plan,
            "delivery_date": x.delivery_date, "amenities": list(x.amenities), "description": x.description,
            "status": x.status, "latitude": x.latitude, "longitude": x.longitude, "images": list(x.images)}


def _set_by(file_columns: set[str] | frozenset[str] | None) -> frozenset:
    """The properties columns an upsert of a file with these import columns updates (None: all)."""
    if file_columns is None:
        return frozenset(_WRITTEN)
    # the required columns are in every file, so this is never empty
    return frozenset(c for name in file_columns for c in FILE_COLUMNS.get(name, ())) or frozenset({"price"})


def changed_columns(conn: Connection, *, agent_id: int, listings: list[tuple[Listing, int | None]],
                    file_columns: set[str] | frozenset[str] | None = None) -> dict[str, list[str]]:
    """For listings that exist already: reference → the columns an upsert would change (those the file
    sets, whose value differs)."""
    written = [c for c in _WRITTEN if c in _set_by(file_columns)]
    refs = [x.reference for x, _ in listings]
    with conn.cursor() as cur:
        cur.execute(f"SELECT reference, {', '.join(_WRITTEN)} FROM properties "   # noqa: S608 - fixed names
                    "WHERE agent_id = %s AND reference = ANY(%s)", (agent_id, refs))
        old = {r["reference"]: r for r in cur.fetchall()}
    out = {}
    for listing, area_id in listings:
        row = old.get(listing.reference)
        if row is None:
            continue
        new = listing_values(listing, area_id)
        diff = [c for c in written if _comparable(row[c]) != _comparable(new[c])]
        if diff:
            out[listing.reference] = diff
    return out


def _comparable(value):
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, float):
        return round(value, 7)
    if value is not None and hasattr(value, "normalize"):      # Decimal
        return value.normalize()
    return value


def upsert_properties(
    conn: Connection, *, organization_id: int, agent_id: int, listings: list[tuple[Listing, int | None]],
    file_columns: set[str] | frozenset[str] | None = None,
) -> dict[str, bool]:
    """Write listings by reference; returns reference → inserted for the rows that changed.

    file_columns: the import columns the source had (None: all). A new listing gets every field; an
    existing one only those its columns set, the rest stay as they were."""
    rows = []
    for x, area_id in listings:
        values = listing_values(x, area_id)
        rows.append((organization_id, agent_id, x.reference, *(values[c] for c in _WRITTEN)))
    if not rows:
        return {}
    template = "(" + ", ".join(["%s"] * 18) + ", %s::text[], %s, %s, %s, %s, %s::text[])"
    with conn.cursor() as cur:
        result = execute_values(cur, _upsert_sql(_set_by(file_columns)), rows, template=template, page_size=500,
                                fetch=True)
    return {r["reference"]: r["inserted"] for r in result}


def get_property(conn: Connection, *, agent_id: int, reference: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {PROPERTY_COLUMNS} FROM properties p
             WHERE p.agent_id = %s AND upper(p.reference) = upper(%s)
             ORDER BY p.reference = %s DESC LIMIT 1
            """,
            (agent_id, reference, reference),
        )
        return cur.fetchone()


def get_properties_by_id(conn: Connection, *, agent_id: int, ids: list[int]) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {PROPERTY_COLUMNS} FROM properties p WHERE p.agent_id = %s AND p.id = ANY(%s)",
            (agent_id, ids),
        )
        by_id = {r["id"]: r for r in cur}
    return [by_id[i] for i in ids if i in by_id]


def get_properties(conn: Connection, *, agent_id: int, references: list[str] | tuple[str, ...]) -> list[dict]:
    """The agent's listings with these references, in the order given (those that exist)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {PROPERTY_COLUMNS} FROM properties p WHERE p.agent_id = %s AND p.reference = ANY(%s)",
                    (agent_id, list(references)))
        by_reference = {r["reference"]: r for r in cur}
    return [by_reference[ref] for ref in references if ref in by_reference]


def delete_property(conn: Connection, *, agent_id: int, reference: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            DELETE FROM properties WHERE agent_id = %s AND reference = %s
            RETURNING id, organization_id, reference
            """,
            (agent_id, reference),
        )
        return cur.fetchone()


def list_properties(
    conn: Connection, *, agent_id: int, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {PROPERTY_COLUMNS} FROM properties p
             WHERE p.agent_id = %s AND (%s::text IS NULL OR p.status = %s)
             ORDER BY p.reference LIMIT %s OFFSET %s
            """,
            (agent_id, status, status, limit, offset),
        )
        return cur.fetchall()


def count_properties(conn: Connection, *, agent_id: int) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT status, count(*) AS n FROM properties WHERE agent_id = %s GROUP BY status", (agent_id,))
        return {r["status"]: r["n"] for r in cur}


_SEARCH = f"""
    WITH q AS (SELECT CASE WHEN %(terms)s::text[] IS NULL THEN NULL
                           ELSE to_tsquery('english', %(query)s) || to_tsquery('simple', %(query)s) END AS query)
    SELECT {PROPERTY_COLUMNS},
           CASE WHEN q.query IS NULL THEN 0 ELSE ts_rank_cd(p.search_vector, q.query) END AS rank,
           CASE WHEN q.query IS NULL THEN '{{}}'::text[]
                ELSE ARRAY(SELECT t FROM unnest(%(terms)s::text[]) t
                            WHERE p.search_vector @@ (plainto_tsquery('english', t) || plainto_tsquery('simple', t)))
           END AS matched_terms,
           la.name_en AS area_name
      FROM q, properties p LEFT JOIN location_areas la ON la.id = p.area_id
     WHERE p.agent_id = %(agent_id)s
       AND p.status = ANY(%(statuses)s::text[])
       AND (%(types)s::text[] IS NULL OR p.property_type = ANY(%(types)s::text[]))
       AND (%(listing_type)s::text IS NULL OR p.listing_type = %(listing_type)s::text)
       AND (%(areas)s::text[] IS NULL OR p.area_id IN (SELECT id FROM location_areas WHERE slug = ANY(%(areas)s::text[])))
       AND (%(bedrooms_min)s::int IS NULL OR p.bedrooms >= %(bedrooms_min)s::int)
       AND (%(bedrooms_max)s::int IS NULL OR p.bedrooms <= %(bedrooms_max)s::int)
       AND (%(price_min)s::numeric IS NULL OR p.price >= %(price_min)s::numeric)
       AND (%(price_max)s::numeric IS NULL OR p.price <= %(price_max)s::numeric)
       AND (%(size_min)s::numeric IS NULL OR p.area_sqm >= %(size_min)s::numeric)
       AND (%(size_max)s::numeric IS NULL OR p.area_sqm <= %(size_max)s::numeric)
       AND (%(amenities)s::text[] IS NULL OR NOT EXISTS (
                SELECT 1 FROM unnest(%(amenities)s::text[]) wanted
                 WHERE NOT EXISTS (SELECT 1 FROM unnest(p.amenities) have WHERE strpos(have, wanted) > 0)))
     ORDER BY rank DESC, abs(p.price - coalesce(%(price_target)s::numeric, 0)), p.id
     LIMIT %(limit)s
"""


def search_properties(
    conn: Connection,
    *,
    agent_id: int,
    statuses: list[str],
    types: list[str] | None = None,
    listing_type: str | None = None,
    areas: list[str] | None = None,
    bedrooms_min: int | None = None,
    bedrooms_max: int | None = None,
    price_min: int | None = None,
    price_max: int | None = None,
    size_min: int | None = None,
    size_max: int | None = None,
    amenities: list[str] | None = None,
    terms: list[str] | None = None,
    limit: int = 5,
) -> list[dict]:
    """One agent's listings that pass every filter, best text match first, then nearest the budget.

    `terms` rank and never filter; each must be a plain word (letters and digits only): they are
    joined into a to_tsquery OR-expression.
    """
    params = search_params(
        agent_id=agent_id, statuses=statuses, types=types, listing_type=listing_type, areas=areas,
        bedrooms_min=bedrooms_min, bedrooms_max=bedrooms_max, price_min=price_min, price_max=price_max,
        size_min=size_min, size_max=size_max, amenities=amenities, terms=terms, limit=limit,
    )
    with conn.cursor() as cur:
        cur.execute(_SEARCH, params)
        return cur.fetchall()


def search_params(**p) -> dict:
    """The parameters of the search statement for the keyword arguments of search_properties."""
    terms = p.get("terms") or None
    price_max, price_min = p.get("price_max"), p.get("price_min")
    return {
        "agent_id": p["agent_id"], "statuses": p["statuses"], "types": p.get("types") or None,
        "listing_type": p.get("listing_type"), "areas": p.get("areas") or None,
        "bedrooms_min": p.get("bedrooms_min"), "bedrooms_max": p.get("bedrooms_max"),
        "price_min": price_min, "price_max": price_max, "size_min": p.get("size_min"), "size_max": p.get("size_max"),
        "amenities": p.get("amenities") or None, "terms": terms, "query": " | ".join(terms or ()),
        "price_target": price_max if price_max is not None else price_min, "limit": p.get("limit", 5),
    }


def areas_by_slug(conn: Connection, *, slugs: list[str]) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, slug, name_en, name_ar FROM location_areas WHERE slug = ANY(%s)", (slugs,))
        return cur.fetchall()


def browse_properties(conn: Connection, *, agent_id: int, q: str | None, status: str | None, limit: int,
                      offset: int) -> tuple[list[dict], int]:
    """The agent's listings for the listings page: a text match on reference, project, district and city
    (Arabic normalised), by status; with the total count."""
    pattern = f"%{normalize(q)}%" if q else None
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {PROPERTY_COLUMNS}, count(*) OVER () AS total FROM properties p
             WHERE p.agent_id = %(agent)s AND (%(status)s::text IS NULL OR p.status = %(status)s)
               AND (%(q)s::text IS NULL OR normalize_text(concat_ws(' ', p.reference, p.project_name, p.district,
                                                                    p.district_ar, p.city, p.property_type)) LIKE %(q)s)
             ORDER BY p.reference LIMIT %(limit)s OFFSET %(offset)s
            """,
            {"agent": agent_id, "status": status, "q": pattern, "limit": limit, "offset": offset},
        )
        rows = cur.fetchall()
    return rows, (rows[0]["total"] if rows else 0)
