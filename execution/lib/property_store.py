"""SQL for properties and location aliases: fixed statements with parameters, always one agent's rows."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2.extras import execute_values

from execution.lib.db import Connection
from execution.lib.listings import Listing

PROPERTY_COLUMNS = """
    p.id, p.organization_id, p.agent_id, p.reference, p.project_name, p.developer_name, p.property_type,
    p.listing_type, p.city, p.district, p.district_ar, p.area_id, p.bedrooms, p.bathrooms, p.area_sqm,
    p.price, p.currency, p.payment_plan, p.delivery_date, p.amenities, p.description, p.status,
    p.latitude, p.longitude, p.images, p.created_at, p.updated_at
"""

_UPSERT = """
    INSERT INTO properties AS p (organization_id, agent_id, reference, project_name, developer_name, property_type,
        listing_type, city, district, district_ar, area_id, bedrooms, bathrooms, area_sqm, price, currency,
        payment_plan, delivery_date, amenities, description, status, latitude, longitude, images)
    VALUES %s
    ON CONFLICT (agent_id, reference) DO UPDATE SET
        project_name = EXCLUDED.project_name, developer_name = EXCLUDED.developer_name,
        property_type = EXCLUDED.property_type, listing_type = EXCLUDED.listing_type, city = EXCLUDED.city,
        district = EXCLUDED.district, district_ar = EXCLUDED.district_ar, area_id = EXCLUDED.area_id,
        bedrooms = EXCLUDED.bedrooms, bathrooms = EXCLUDED.bathrooms, area_sqm = EXCLUDED.area_sqm,
        price = EXCLUDED.price, currency = EXCLUDED.currency, payment_plan = EXCLUDED.payment_plan,
        delivery_date = EXCLUDED.delivery_date, amenities = EXCLUDED.amenities,
        description = EXCLUDED.description, status = EXCLUDED.status, latitude = EXCLUDED.latitude,
        longitude = EXCLUDED.longitude, images = EXCLUDED.images, updated_at = now()
    WHERE (p.project_name, p.developer_name, p.property_type, p.listing_type, p.city, p.district,
           p.district_ar, p.area_id, p.bedrooms, p.bathrooms, p.area_sqm, p.price, p.currency, p.payment_plan,
           p.delivery_date, p.amenities, p.description, p.status, p.latitude, p.longitude, p.images)
          IS DISTINCT FROM
          (EXCLUDED.project_name, EXCLUDED.developer_name, EXCLUDED.property_type, EXCLUDED.listing_type,
           EXCLUDED.city, EXCLUDED.district, EXCLUDED.district_ar, EXCLUDED.area_id, EXCLUDED.bedrooms,
           EXCLUDED.bathrooms, EXCLUDED.area_sqm, EXCLUDED.price, EXCLUDED.currency, EXCLUDED.payment_plan,
           EXCLUDED.delivery_date, EXCLUDED.amenities, EXCLUDED.description, EXCLUDED.status,
           EXCLUDED.latitude, EXCLUDED.longitude, EXCLUDED.images)
    RETURNING p.reference, (p.xmax = 0) AS inserted
"""


@dataclass(frozen=True)
class Alias:
    normalized: str
    area_id: int
    slug: str
    name_en: str
    name_ar: str


def load_aliases(conn: Connection, *, organization_id: int | None) -> list[Alias]:
    """Every alias everyone shares plus the organization's own, longest first (so longer names win)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT l.alias_normalized, a.id AS area_id, a.slug, a.name_en, a.name_ar
              FROM location_aliases l JOIN location_areas a ON a.id = l.area_id
             WHERE l.organization_id IS NULL OR l.organization_id = %s
             ORDER BY length(l.alias_normalized) DESC, l.alias_normalized
            """,
            (organization_id,),
        )
        return [Alias(r["alias_normalized"], r["area_id"], r["slug"], r["name_en"], r["name_ar"]) for r in cur]


def area_by_slug(conn: Connection, *, slug: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT id, slug, name_en, name_ar FROM location_areas WHERE slug = %s", (slug,))
        return cur.fetchone()


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
        return cur.fetchone() is not None


def upsert_properties(
    conn: Connection, *, organization_id: int, agent_id: int, listings: list[tuple[Listing, int | None]]
) -> dict[str, bool]:
    """Write listings by reference; returns reference → inserted for the rows that changed."""
    rows = [
        (
            organization_id, agent_id, x.reference, x.project_name, x.developer_name, x.property_type,
            x.listing_type, x.city, x.district, x.district_ar, area_id, x.bedrooms, x.bathrooms, x.area_sqm,
            x.price, x.currency, x.payment_plan, x.delivery_date, list(x.amenities), x.description, x.status,
            x.latitude, x.longitude, list(x.images),
        )
        for x, area_id in listings
    ]
    if not rows:
        return {}
    template = "(" + ", ".join(["%s"] * 18) + ", %s::text[], %s, %s, %s, %s, %s::text[])"
    with conn.cursor() as cur:
        result = execute_values(cur, _UPSERT, rows, template=template, page_size=500, fetch=True)
    return {r["reference"]: r["inserted"] for r in result}


def get_property(conn: Connection, *, agent_id: int, reference: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {PROPERTY_COLUMNS} FROM properties p WHERE p.agent_id = %s AND lower(p.reference) = lower(%s)",
            (agent_id, reference),
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


def delete_property(conn: Connection, *, agent_id: int, reference: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            DELETE FROM properties WHERE agent_id = %s AND lower(reference) = lower(%s)
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
