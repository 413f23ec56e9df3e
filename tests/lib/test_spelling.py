"""Typo tolerance: misspellings reach the vocabulary, real words never become something else."""

import pytest

from execution.lib import property_store
from execution.lib.criteria import Criteria, extract
from execution.lib.spelling import edits, nearest, stands_for


@pytest.fixture(scope="module")
def aliases(database):
    with database.connection() as c:
        return property_store.load_aliases(c, organization_id=None)


@pytest.mark.parametrize("text, expected", [
    # property types
    ("appartment in maadi", {"property_types": ("apartment",), "areas": ("maadi",)}),
    ("apartmnet", {"property_types": ("apartment",)}),
    ("vila", {"property_types": ("villa",)}),
    ("villla with a pool", {"property_types": ("villa",), "amenities": ("pool",)}),
    ("duplx", {"property_types": ("duplex",)}),
    ("penthose", {"property_types": ("penthouse",)}),
    ("فيللا", {"property_types": ("villa",)}),
    ("دوبليكص", {"property_types": ("duplex",)}),
    ("sha22aa", {"property_types": ("apartment",)}),
    ("shaleeeh", {"property_types": ("chalet",)}),
    # areas, through the alias table
    ("madi", {"areas": ("maadi",)}),
    ("new ciaro", {"areas": ("new-cairo",)}),
    ("shiekh zayed", {"areas": ("sheikh-zayed",)}),
    ("north cost", {"areas": ("north-coast",)}),
    ("heliopolos", {"areas": ("heliopolis",)}),
    ("الزملك", {"areas": ("zamalek",)}),
    ("مصر الجديده", {"areas": ("heliopolis",)}),
    ("fel ta3amo3", {"areas": ("new-cairo",)}),
    ("el zamalk", {"areas": ("zamalek",)}),
    # number words and room words
    ("thre bedrooms", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("3 bedroms", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("fuor bedrooms", {}),                                  # four letters, letters swapped: too short to guess
    ("sevenn bedrooms", {"bedrooms_min": 7, "bedrooms_max": 7}),
    ("اتنبن غرف", {"bedrooms_min": 2, "bedrooms_max": 2}),
    ("talatta owad", {"bedrooms_min": 3, "bedrooms_max": 3}),
    ("arba3aa owad", {"bedrooms_min": 4, "bedrooms_max": 4}),
])
def test_misspellings_are_read(aliases, text, expected):
    assert extract(text, aliases=aliases) == Criteria(**expected), extract(text, aliases=aliases).evidence


@pytest.mark.parametrize("text", [
    "looking for a flag", "a float", "the village school", "I like the viola", "studies show", "the chapel",
    "roofs and roots", "there bedrooms", "fine bedrooms", "for bedrooms", "these bedrooms", "free bedrooms",
    "a madam", "shale", "sever", "fiats and flaps",
    "فيها ايه", "السعر العادي", "في الساحه", "العاصفه", "زائد غرفه", "سعيد",
    "ana fahem", "mesh 3aref", "7elwa awy",
])
def test_real_words_are_never_read_as_another(aliases, text):
    found = extract(text, aliases=aliases)
    assert not (found.property_types or found.areas or found.bedrooms_min is not None), found.evidence


def test_reach_grows_with_length_and_arabic_replacements_must_be_confusable():
    assert edits("apartment", "appartment", 2) == 1 and edits("ab", "ba", 1) == 1
    assert stands_for("vila", "villa")                     # a doubled letter written once
    assert not stands_for("fila", "fella") and not stands_for("flag", "flat") and not stands_for("for", "four")
    assert stands_for("apratment", "apartment")            # two letters swapped
    assert not stands_for("zayed", "payed") and not stands_for("payed", "zayed")    # the first letter agrees
    assert stands_for("اتنبن", "اتنين")                     # the same shape, other dots
    assert not stands_for("العاصفه", "العاصمه")               # ف / م: not a typo
    assert not stands_for("العادي", "المعادي")                # the article does not count towards the length
    assert nearest("villas", {"villa": 1}) is None or nearest("villas", {"villa": 1}) == 1
    assert nearest("sha2aa", {"sha2a": "apartment", "sha2et": "apartment"}) == "apartment"
    assert nearest("there", {"three": 3}) is None          # a real word
    assert nearest("rent", {"rent": 1}) is None            # the word itself is no misspelling
