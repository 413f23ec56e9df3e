import re
from datetime import date
from decimal import Decimal

import pytest

from execution.lib.formatting import format_price, listing_card, location_pin, short_list
from execution.lib.text import normalize

LISTING = {
    "reference": "NH-0001", "project_name": "Amber Court", "property_type": "apartment", "listing_type": "sale",
    "city": "Cairo", "district": "Maadi", "district_ar": "المعادي", "bedrooms": 3, "bathrooms": 2,
    "area_sqm": Decimal("139.00"), "price": Decimal("7250000.00"), "currency": "EGP",
    "payment_plan": "15% down, 8 years", "delivery_date": date(2029, 3, 1),
    "amenities": ["mosque", "smart home", "landscaped gardens"], "status": "available",
    "latitude": 29.95515, "longitude": 31.26244,
}
RENTAL = {**LISTING, "reference": "NH-0010", "project_name": "Jasmine Court", "listing_type": "rent",
          "price": Decimal("30000"), "delivery_date": None, "payment_plan": None, "bedrooms": 2}


@pytest.mark.parametrize("price, currency, lang, kind, expected", [
    (7250000, "EGP", "en", "sale", "EGP 7,250,000"),
    (Decimal("7250000.00"), "EGP", "ar", "sale", "٧٬٢٥٠٬٠٠٠ جنيه"),
    (30000, "EGP", "en", "rent", "EGP 30,000 / month"),
    (30000, "EGP", "ar", "rent", "٣٠٬٠٠٠ جنيه في الشهر"),
    (Decimal("1250.50"), "GBP", "en", "rent", "GBP 1,250.50 / month"),
    (45000000, "NGN", "en", "sale", "NGN 45,000,000"),
])
def test_prices_have_separators_and_currency(price, currency, lang, kind, expected):
    assert format_price(price, currency, lang=lang, listing_type=kind) == expected


def test_arabic_digits_only_when_asked():
    assert format_price(7250000, "EGP", lang="ar", arabic_digits=False) == "7,250,000 جنيه"


def _numbers(text):
    return {n.replace(",", "") for n in re.findall(r"\d[\d,]*", normalize(text).replace("٬", ","))}


def test_english_card_shows_only_the_listings_own_figures():
    card = listing_card(LISTING, lang="en")
    assert card.splitlines()[0] == "*Amber Court* · NH-0001"
    assert "3-bedroom apartment for sale in Maadi" in card
    assert "EGP 7,250,000" in card and "139 m²" in card and "Delivery Mar 2029" in card
    assert "15% down, 8 years" in card
    assert _numbers(card) <= {"0001", "3", "7250000", "139", "2", "2029", "15", "8"}


def test_arabic_card_uses_arabic_names_and_digits():
    card = listing_card(LISTING, lang="ar")
    assert card.splitlines()[0] == "*Amber Court* · NH-0001"   # references keep Latin digits
    assert "شقة ٣ غرف للبيع في المعادي" in card
    assert "٧٬٢٥٠٬٠٠٠ جنيه" in card and "التسليم مارس ٢٠٢٩" in card
    assert "مقدم ١٥٪ والباقي على ٨ سنين" in card and "مسجد" in card
    assert _numbers(card) <= {"0001", "3", "7250000", "139", "2", "2029", "15", "8"}


def test_cards_for_a_rental_and_a_reserved_listing():
    assert "EGP 30,000 / month" in listing_card(RENTAL, lang="en")
    assert "Ready to move in" in listing_card(RENTAL, lang="en")
    assert "استلام فوري" in listing_card(RENTAL, lang="ar")
    assert listing_card({**LISTING, "status": "reserved"}, lang="en").splitlines()[0].endswith("(reserved)")


def test_short_list_is_the_top_three_with_references():
    many = [{**LISTING, "reference": f"NH-000{i}", "project_name": f"P{i}"} for i in range(1, 6)]
    text = short_list(many, lang="en")
    assert text.splitlines() == [
        f"{i}. *P{i}*: 3-bedroom apartment for sale in Maadi, EGP 7,250,000 (NH-000{i})" for i in (1, 2, 3)]
    arabic = short_list(many, lang="ar").splitlines()
    assert len(arabic) == 3 and arabic[0].startswith("١. *P1*: شقة ٣ غرف للبيع في المعادي") and "(NH-0001)" in arabic[0]


def test_location_pin():
    assert location_pin(LISTING, lang="en") == {
        "kind": "location", "latitude": 29.95515, "longitude": 31.26244, "name": "Amber Court (NH-0001)",
        "address": "Maadi, Cairo"}
    assert location_pin(LISTING, lang="ar")["address"] == "المعادي، القاهرة"
    assert location_pin({**LISTING, "latitude": None}, lang="en") is None
