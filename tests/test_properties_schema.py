import psycopg2
import pytest

from execution.lib import tenant_store


@pytest.fixture
def agents(conn):
    org = tenant_store.upsert_organization(conn, slug="nile", name="Nile")
    a = tenant_store.upsert_agent(conn, organization_id=org["id"], email="a@nile.example", name="A", password_hash=None)
    b = tenant_store.upsert_agent(conn, organization_id=org["id"], email="b@nile.example", name="B", password_hash=None)
    return org["id"], a["id"], b["id"]


def _add(conn, org, agent, ref, **kw):
    row = {"property_type": "apartment", "listing_type": "sale", "price": 7250000, "currency": "EGP",
           "district": "New Administrative Capital", "district_ar": "العاصمة الإدارية الجديدة",
           "description": "3-bedroom apartment, finished, close to the monorail", **kw}
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO properties (organization_id, agent_id, reference, property_type, listing_type, price,
                                       currency, district, district_ar, description)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (org, agent, ref, row["property_type"], row["listing_type"], row["price"], row["currency"],
             row["district"], row["district_ar"], row["description"]),
        )
        return cur.fetchone()["id"]


def test_reference_is_unique_per_agent_not_globally(conn, agents):
    org, a, b = agents
    _add(conn, org, a, "NH-0001")
    _add(conn, org, b, "NH-0001")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        _add(conn, org, a, "NH-0001")


def test_search_vector_matches_arabic_however_it_is_spelled(conn, agents):
    org, a, _ = agents
    pid = _add(conn, org, a, "NH-0002")
    with conn.cursor() as cur:
        for query in ("العاصمه الاداريه", "العاصمة الإدارية", "Administrative Capital", "monorail", "apartments"):
            cur.execute(
                "SELECT id FROM properties WHERE search_vector @@ (plainto_tsquery('english', %s) "
                "|| plainto_tsquery('simple', normalize_text(%s)))",
                (query, query),
            )
            assert [r["id"] for r in cur.fetchall()] == [pid], query


@pytest.mark.parametrize(
    "field, value",
    [("property_type", "castle"), ("listing_type", "lease"), ("currency", "egp"), ("price", -1)],
)
def test_bad_values_are_refused_by_the_schema(conn, agents, field, value):
    org, a, _ = agents
    with pytest.raises(psycopg2.errors.CheckViolation):
        _add(conn, org, a, "NH-BAD", **{field: value})
