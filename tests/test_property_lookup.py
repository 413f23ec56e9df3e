import json
from pathlib import Path

import pytest

from execution import property_lookup as cmd
from execution.identify_conversation import identify_conversation
from execution.lib import property_store, tenant_store
from execution.lib.criteria import Criteria, extract
from execution.lib.errors import NotFound
from execution.lib.listing_import import import_listings
from execution.property_lookup import get_property, remember_preferences, search, search_terms

DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data"


@pytest.fixture
def agents(conn):
    """Sara and Omar, each with their demo listings; Omar also holds copies of two of Sara's references."""
    sara_org = tenant_store.upsert_organization(conn, slug="nile", name="Nile")
    omar_org = tenant_store.upsert_organization(conn, slug="delta", name="Delta")
    sara = tenant_store.upsert_agent(conn, organization_id=sara_org["id"], email="sara@nile-homes.example", name="S",
                              password_hash=None)
    omar = tenant_store.upsert_agent(conn, organization_id=omar_org["id"], email="omar@delta-realty.example", name="O",
                              password_hash=None)
    assert not import_listings(conn, path=DEMO / "listings_nile_homes.csv").errors
    assert not import_listings(conn, path=DEMO / "listings_delta_realty.csv").errors
    return {**sara, "organization_id": sara_org["id"]}, {**omar, "organization_id": omar_org["id"]}


def _aliases(conn, agent):
    return property_store.load_aliases(conn, organization_id=agent["organization_id"])


def _refs(hits):
    return [h.reference for h in hits]


def test_search_never_returns_another_agents_listing(conn, agents):
    sara, omar = agents
    everything = Criteria(include_unavailable=True)
    assert all(r.startswith("NH-") for r in _refs(search(conn, agent_id=sara["id"], criteria=everything, limit=50)))
    assert all(r.startswith("DR-") for r in _refs(search(conn, agent_id=omar["id"], criteria=everything, limit=50)))
    # Same text, same filters: each agent gets only their own rows.
    for agent, prefix in ((sara, "NH-"), (omar, "DR-")):
        hits = search(conn, agent_id=agent["id"], criteria=Criteria(property_types=("apartment",)),
                      text="apartment New Capital", limit=50)
        assert hits and all(h.reference.startswith(prefix) for h in hits)
        assert all(h.property["agent_id"] == agent["id"] for h in hits)
    with pytest.raises(NotFound):
        get_property(conn, agent_id=omar["id"], reference="NH-0001")
    assert get_property(conn, agent_id=sara["id"], reference="nh-0001")["project_name"] == "Amber Court"


@pytest.mark.parametrize("text", [
    "3 bedroom apartment in New Cairo under 10M",
    "عايز شقة ٣ غرف في التجمع الخامس اقل من ١٠ مليون",
    "3ayez sha2a 3 owad fel tagamo3 a2al men 10 million",
])
def test_the_same_request_in_three_languages_finds_the_same_listings(conn, agents, text):
    sara, _ = agents
    criteria = extract(text, aliases=_aliases(conn, sara))
    hits = search(conn, agent_id=sara["id"], criteria=criteria, text=text)
    assert _refs(hits) == ["NH-0058"]
    p = hits[0].property
    assert (p["property_type"], p["district"], p["bedrooms"], p["status"]) == ("apartment", "New Cairo", 3, "available")
    assert p["price"] <= 10_000_000
    assert hits[0].reasons[:5] == ("type apartment", "for sale", "in New Cairo", "3 bedrooms",
                                   "price EGP 9,800,000 within budget ≤ 10,000,000")   # millions: for sale


def _check_every(hits, predicate):
    assert hits, "expected at least one hit"
    for h in hits:
        assert predicate(h.property), h.reference


def test_each_filter_holds_for_every_hit(conn, agents):
    sara, _ = agents
    s = lambda **kw: search(conn, agent_id=sara["id"], criteria=Criteria(**kw), limit=50)  # noqa: E731
    _check_every(s(listing_type="rent"), lambda p: p["listing_type"] == "rent")
    _check_every(s(property_types=("chalet", "twin house")), lambda p: p["property_type"] in ("chalet", "twin house"))
    _check_every(s(areas=("north-coast",)), lambda p: p["district"] == "North Coast")
    _check_every(s(bedrooms_min=4), lambda p: p["bedrooms"] >= 4)
    _check_every(s(bedrooms_min=2, bedrooms_max=2), lambda p: p["bedrooms"] == 2)
    _check_every(s(price_min=10_000_000, price_max=15_000_000), lambda p: 10_000_000 <= p["price"] <= 15_000_000)
    _check_every(s(size_min=200, size_max=300), lambda p: 200 <= p["area_sqm"] <= 300)
    _check_every(s(amenities=("pool", "sea view")),
                 lambda p: "swimming pool" in p["amenities"] and "sea view" in p["amenities"])
    _check_every(s(), lambda p: p["status"] == "available")
    statuses = {h.property["status"] for h in s(include_unavailable=True)}
    assert statuses == {"available", "reserved", "sold"}
    assert s(areas=("zamalek",), property_types=("chalet",)) == []
    assert s(areas=("no-such-area",)) == []


def test_results_are_nearest_the_budget_first(conn, agents):
    sara, _ = agents
    hits = search(conn, agent_id=sara["id"], criteria=Criteria(property_types=("apartment",), price_max=8_000_000),
                  limit=5)
    prices = [h.property["price"] for h in hits]
    assert prices == sorted(prices, reverse=True) and prices[0] <= 8_000_000


def test_text_ranks_the_listing_it_names_first(conn, agents):
    sara, _ = agents
    hits = search(conn, agent_id=sara["id"], criteria=Criteria(property_types=("duplex",)), text="duplex in Nile Bay")
    assert hits[0].reference == "NH-0003"
    assert "mentions nile, bay" in hits[0].reasons
    # Arabic text matches the Arabic district name however it is spelled.
    hits = search(conn, agent_id=sara["id"], criteria=Criteria(), text="الشيخ زايد", limit=3)
    assert hits and all(h.property["district"] == "Sheikh Zayed" for h in hits)


def test_search_terms_keep_content_words_only():
    assert search_terms("I want a 3 bedroom flat in Amber Court with a pool please") == ["amber", "court"]
    assert search_terms("شقة في الشيخ زايد") == ["الشيخ", "زايد"]
    assert search_terms("'; DROP TABLE properties; --") == ["drop", "table", "properties"]
    assert search_terms(None) == []


def test_preferences_accumulate_on_the_conversation(conn, agents):
    sara, _ = agents
    channel = tenant_store.upsert_channel(conn, organization_id=sara["organization_id"], agent_id=sara["id"],
                                   provider="sandbox", instance_id="1100000077")
    convo = identify_conversation(conn, channel=channel, chat_id="15550000001@c.us")
    aliases = _aliases(conn, sara)
    for turn in ("السلام عليكم، عايز شقة", "في التجمع", "٣ غرف", "في حدود ١٠ مليون"):
        prefs = remember_preferences(conn, conversation_id=convo["id"], criteria=extract(turn, aliases=aliases))
    assert prefs == Criteria(property_types=("apartment",), listing_type="sale", areas=("new-cairo",),
                             bedrooms_min=3, bedrooms_max=3, price_max=11_000_000)   # millions: buying
    with conn.cursor() as cur:
        cur.execute("SELECT preferences FROM conversations WHERE id = %s", (convo["id"],))
        assert Criteria.from_json(cur.fetchone()["preferences"]) == prefs
    assert "NH-0058" in _refs(search(conn, agent_id=sara["id"], criteria=prefs))
    with pytest.raises(NotFound):
        remember_preferences(conn, conversation_id=10**9, criteria=prefs)


def test_cli_prints_criteria_hits_and_the_reply(resources, capsys):
    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="nile", name="Nile")
        tenant_store.upsert_agent(c, organization_id=org["id"], email="sara@nile-homes.example", name="S", password_hash=None)
        import_listings(c, path=DEMO / "listings_nile_homes.csv")
    argv = ["--agent", "sara@nile-homes.example", "--text", "عايز شقة للإيجار في المعادي"]
    assert cmd.main(argv, resources=resources) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["criteria"]["listing_type"] == "rent" and out["criteria"]["areas"] == ["maadi"]
    assert [h["reference"] for h in out["hits"]] == ["NH-0052", "NH-0049"]
    assert "NH-0052" in out["reply"] and "جنيه في الشهر" in out["reply"]
    assert out["missing"] == ["budget", "bedrooms"]
    assert cmd.main(["--agent", "sara@nile-homes.example", "--reference", "NH-0001"], resources=resources) == 0
    assert "*Amber Court* · NH-0001" in json.loads(capsys.readouterr().out)["card"]
    assert cmd.main(["--agent", "sara@nile-homes.example", "--reference", "DR-0001"], resources=resources) == 4
