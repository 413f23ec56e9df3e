"""The criteria extractor, table-driven over English, Egyptian Arabic and Arabizi phrasings."""

import pytest

from execution.lib import property_store
from execution.lib.criteria import Criteria, detect_language, extract, merge


@pytest.fixture(scope="module")
def aliases(database):
    with database.connection() as c:
        return property_store.load_aliases(c, organization_id=None)


M = 1_000_000

# text → the fields it must yield (fields not named must stay empty).
CASES = [
    # bedrooms
    ("3 bedrooms", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("looking for a 2-bedroom flat", {"bedrooms_min": 2, "bedrooms_max": 2, "property_types": ("apartment",)}),
    ("3br apartment", {"bedrooms_min": 3, "bedrooms_max": 3, "property_types": ("apartment",)}),
    ("at least 4 bedrooms", {"bedrooms_min": 4}),
    ("3+ beds", {"bedrooms_min": 3}),
    ("three bedrooms please", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("عايز شقة 3 غرف", {"bedrooms_min": 3, "bedrooms_max": 3, "property_types": ("apartment",)}),
    ("شقه ٣ غرف", {"bedrooms_min": 3, "bedrooms_max": 3, "property_types": ("apartment",)}),
    ("محتاج تلات غرف نوم", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("شقة غرفتين", {"bedrooms_min": 2, "bedrooms_max": 2, "property_types": ("apartment",)}),
    ("4 غرف او اكتر", {"bedrooms_min": 4}),
    ("3 owad", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("sha2a 2 owad", {"bedrooms_min": 2, "bedrooms_max": 2, "property_types": ("apartment",)}),
    # types
    ("do you have a villa?", {"property_types": ("villa",)}),
    ("فيلا", {"property_types": ("villa",)}),
    ("chalet on the sea", {"property_types": ("chalet",), "amenities": ("sea view",)}),
    ("شاليه في الساحل", {"property_types": ("chalet",), "areas": ("north-coast",)}),
    ("duplex with a garden", {"property_types": ("duplex",), "amenities": ("garden",)}),
    ("townhouse or twin house", {"property_types": ("twin house", "townhouse")}),
    ("studio for rent", {"property_types": ("studio",), "listing_type": "rent"}),
    ("ستوديو", {"property_types": ("studio",)}),
    ("3ayez fella fel sahel", {"property_types": ("villa",), "areas": ("north-coast",)}),
    # sale or rent
    ("flat for rent in maadi", {"property_types": ("apartment",), "listing_type": "rent", "areas": ("maadi",)}),
    ("شقة للإيجار", {"property_types": ("apartment",), "listing_type": "rent"}),
    ("شقه ايجار في المعادي", {"property_types": ("apartment",), "listing_type": "rent", "areas": ("maadi",)}),
    ("sha2a egar", {"property_types": ("apartment",), "listing_type": "rent"}),
    ("I want to buy an apartment", {"property_types": ("apartment",), "listing_type": "sale"}),
    ("عايز اشتري شقة تمليك", {"property_types": ("apartment",), "listing_type": "sale"}),
    # budget (in the millions: buying, unless renting is said)
    ("under 8M", {"listing_type": "sale", "price_max": 8 * M}),
    ("budget 8 million", {"listing_type": "sale", "price_max": 8 * M}),
    ("around 8 million", {"listing_type": "sale", "price_max": int(8.8 * M)}),
    ("في حدود ٨ مليون", {"listing_type": "sale", "price_max": int(8.8 * M)}),
    ("مش اكتر من 5 مليون", {"listing_type": "sale", "price_max": 5 * M}),
    ("2.5m", {"listing_type": "sale", "price_max": int(2.75 * M)}),
    ("max 7,500,000 EGP", {"listing_type": "sale", "price_max": 7_500_000}),
    ("30k a month", {"price_max": 33_000, "listing_type": "rent"}),
    ("30 الف في الشهر", {"price_max": 33_000, "listing_type": "rent"}),
    ("between 10 and 15 million", {"listing_type": "sale", "price_min": 10 * M, "price_max": 15 * M}),
    ("10-15M", {"listing_type": "sale", "price_min": 10 * M, "price_max": 15 * M}),
    ("من ١٠ ل ١٥ مليون", {"listing_type": "sale", "price_min": 10 * M, "price_max": 15 * M}),
    ("fe 7odod 6 malyon", {"listing_type": "sale", "price_max": int(6.6 * M)}),
    ("a2al men 4 million", {"listing_type": "sale", "price_max": 4 * M}),
    ("مليون ونص", {"listing_type": "sale", "price_max": int(1.65 * M)}),
    ("more than 20 million", {"listing_type": "sale", "price_min": 20 * M}),
    # areas through the aliases
    ("apartment in New Cairo", {"property_types": ("apartment",), "areas": ("new-cairo",)}),
    ("Fifth Settlement", {"areas": ("new-cairo",)}),
    ("fel tagamo3", {"areas": ("new-cairo",)}),
    ("شقة في التجمع الخامس", {"property_types": ("apartment",), "areas": ("new-cairo",)}),
    ("بالتجمع", {"areas": ("new-cairo",)}),
    ("6 October 3 bedrooms", {"areas": ("6th-of-october",), "bedrooms_min": 3, "bedrooms_max": 3}),
    ("شقة في أكتوبر", {"property_types": ("apartment",), "areas": ("6th-of-october",)}),
    ("el 3asma el edareya", {"areas": ("new-capital",)}),
    ("العاصمه الاداريه", {"areas": ("new-capital",)}),
    ("masr el gedida aw zayed", {"areas": ("heliopolis", "sheikh-zayed")}),
    ("مصر الجديدة", {"areas": ("heliopolis",)}),
    # everything at once, in each language
    ("Looking for a 3 bedroom apartment in New Cairo under 8M with a pool",
     {"listing_type": "sale", "bedrooms_min": 3, "bedrooms_max": 3, "property_types": ("apartment",), "areas": ("new-cairo",),
      "price_max": 8 * M, "amenities": ("pool",)}),
    ("عايز شقة ٣ غرف في التجمع في حدود ٨ مليون",
     {"listing_type": "sale", "bedrooms_min": 3, "bedrooms_max": 3, "property_types": ("apartment",), "areas": ("new-cairo",),
      "price_max": int(8.8 * M)}),
    ("3ayez sha2a 3 owad fel tagamo3 b 7 million",
     {"listing_type": "sale", "bedrooms_min": 3, "bedrooms_max": 3, "property_types": ("apartment",), "areas": ("new-cairo",),
      "price_max": int(7.7 * M)}),
    ("villa 400 m2 in zayed", {"property_types": ("villa",), "areas": ("sheikh-zayed",), "size_min": 340,
                               "size_max": 459}),
    ("at least 150 sqm", {"size_min": 150}),
    ("details of NH-0007?", {"reference": "NH-0007"}),
    ("including sold ones", {"include_unavailable": True}),
    # nothing to find
    ("hello, is anyone there?", {}),
    ("delivery in 2027?", {}),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_extract(aliases, text, expected):
    found = extract(text, aliases=aliases)
    assert found == Criteria(**expected), found.evidence


def test_there_are_enough_phrasings_in_every_language():
    assert len(CASES) >= 40
    languages = {detect_language(text) for text, _ in CASES}
    assert languages == {"en", "ar", "arabizi"}


@pytest.mark.parametrize("text, language", [
    ("Looking for a flat in New Cairo", "en"),
    ("3br under 8M", "en"),
    ("عايز شقة في التجمع", "ar"),
    ("3ayez sha2a fel tagamo3", "arabizi"),
    ("ana 3ayez a3raf el as3ar", "arabizi"),
    ("momken details el sha2a", "arabizi"),
])
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_every_finding_says_where_it_came_from(aliases):
    found = extract("عايز شقة ٣ غرف في التجمع", aliases=aliases)
    assert any("bedrooms" in e for e in found.evidence)
    assert any("area new-cairo" == e for e in found.evidence)


def test_preferences_accumulate_and_newer_statements_win(aliases):
    turns = ["Hi, I want to buy a flat in New Cairo", "3 bedrooms please", "with a pool", "budget 8M",
             "actually make it Sheikh Zayed", "and a gym"]
    prefs = Criteria()
    for turn in turns:
        prefs = merge(prefs, extract(turn, aliases=aliases))
    assert prefs == Criteria(property_types=("apartment",), listing_type="sale", areas=("sheikh-zayed",),
                             bedrooms_min=3, bedrooms_max=3, price_max=8 * M, amenities=("pool", "gym"))
    assert prefs.missing() == ()
    assert Criteria.from_json(prefs.to_json()) == prefs


def test_missing_lists_what_an_agent_still_needs(aliases):
    assert extract("flat in maadi", aliases=aliases).missing() == ("budget", "bedrooms", "listing_type")
    assert Criteria().missing() == ("area", "budget", "bedrooms", "listing_type")


def test_organization_aliases_extend_the_shared_ones(aliases):
    from execution.lib.property_store import Alias

    own = [Alias("كمبوند النخيل", 99, "palm-compound", "Palm Compound", "كمبوند النخيل")]
    found = extract("عايز شقة في كمبوند النخيل", aliases=own + aliases)
    assert found.areas == ("palm-compound",)
