"""The grounding guard: figures in a draft reply must come from the retrieved listings (pure, no database)."""

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from execution.lib.formatting import listing_card, short_list
from execution.lib.grounding import GuardResult, Miss, check_draft

AMBER = {
    "reference": "HP-101", "project_name": "Amber Court", "property_type": "apartment", "listing_type": "sale",
    "city": "Cairo", "district": "Maadi", "district_ar": "المعادي", "bedrooms": 3, "bathrooms": 2,
    "area_sqm": Decimal("120.00"), "price": Decimal("7250000.00"), "currency": "EGP",
    "payment_plan": "10% down, 8 years", "delivery_date": date(2027, 6, 1),
    "amenities": ["swimming pool", "gym", "security 24/7"], "status": "available",
    "latitude": 29.95515, "longitude": 31.26244, "images": [],
}
LOTUS = {**AMBER, "reference": "HP-102", "project_name": "Lotus Park", "property_type": "villa", "bedrooms": 5,
         "bathrooms": 4, "area_sqm": Decimal("569.50"), "price": Decimal("32100000"), "district": "Sheikh Zayed",
         "district_ar": "الشيخ زايد", "payment_plan": "cash; or 5% down, 6 years (+8%)", "delivery_date": None,
         "status": "sold"}
JASMINE = {**AMBER, "reference": "HP-103", "project_name": "Jasmine Court", "listing_type": "rent", "bedrooms": 2,
           "bathrooms": 1, "area_sqm": Decimal("95"), "price": Decimal("30000"), "payment_plan": None,
           "delivery_date": None, "status": "reserved", "amenities": ["sea view", "kids area"]}
STUDIO_USD = {**AMBER, "reference": "NH-0042", "project_name": None, "property_type": "studio", "bedrooms": 0,
              "bathrooms": 1, "area_sqm": Decimal("48"), "price": Decimal("1250.50"), "currency": "GBP",
              "listing_type": "rent", "payment_plan": None, "delivery_date": date(2028, 12, 1)}


def check(draft, listings=(AMBER,), customer_text=""):
    return check_draft(draft, listings=list(listings), customer_text=customer_text)


def assert_miss(result: GuardResult, code: str, found: str):
    assert not result.ok, "expected a miss"
    assert (code, found) in [(m.code, m.found) for m in result.misses], result.feedback()


# --- prices: every way of writing 7,250,000 is the same value -----------------------------------------

@pytest.mark.parametrize("draft", [
    "Amber Court is EGP 7,250,000.",
    "The price is 7250000 EGP.",
    "Price: 7.250.000 LE",
    "Price: 7 250 000 pounds",
    "Only 7.25M!",
    "Only 7.25m",
    "It is 7.25 million",
    "It is 7.25 mil",
    "السعر 7,25 مليون",
    "السعر ٧٬٢٥٠٬٠٠٠ جنيه",
    "السعر ٧٫٢٥ مليون جنيه",
    "السعر 7.25 مليون ج.م",
    "السعر 7 مليون و ربع",
    "السعر 7 مليون وربع",
    "السعر ٧٫٥ مليون الا ربع",
    "It costs 7 million and a quarter",
    "Around 7250k",
    "Around 7,250K L.E.",
    "el se3r sab3a million w rob3",
    "el se3r sab3a malyon w rob3 geneh",
    "It is £7.25M",
    "Price EGP7,250,000",
    "السعر ٧ مليون و ٢٥٠ ألف جنيه",
    "It is 7 million 250 thousand",
    "It is 7.3 million",                     # rounded to the written precision
    "تقريبا ٧ مليون",                        # "7 million" covers 6.5–7.5 million
])
def test_price_formats_are_grounded(draft):
    assert check(draft).ok, check(draft).feedback()


@pytest.mark.parametrize("draft, found", [
    ("Amber Court is EGP 6,900,000.", "EGP 6,900,000"),
    ("Only 6.9M!", "6.9M"),
    ("السعر ٦٫٩ مليون جنيه", "٦٫٩ مليون جنيه"),
    ("el se3r sab3a million w nos", "sab3a million w nos"),
    ("السعر 7 مليون الا ربع", "7 مليون الا ربع"),
    ("It is EGP 7,300,000", "EGP 7,300,000"),         # full digits are exact
    ("It is $7,250,000", "$7,250,000"),                # another currency is another price
    ("Price: 6,500K", "6,500K"),
    ("Price: 850 ألف", "850 ألف"),
    ("Price: 850 الف جنيه", "850 الف جنيه"),
    ("السعر تلاته مليون", "تلاته مليون"),
    ("السعر مليونين", "مليونين"),
    ("It is 8 million", "8 million"),
    ("Priced at 6950000", "6950000"),
    ("Deposit of USD 150,000", "USD 150,000"),
    ("Or AED 500,000 if you prefer", "AED 500,000"),
    ("Prices from 5 to 7 million", "5 to 7 million"),
])
def test_invented_prices_are_caught(draft, found):
    assert_miss(check(draft), "unknown_price", found)


def test_detail_names_the_nearest_listing():
    result = check("Amber Court is EGP 6,900,000.")
    assert result.misses == (Miss("unknown_price", "EGP 6,900,000", "EGP 6,900,000 is not the price of any listing "
                                  "retrieved here (HP-101: EGP 7,250,000)"),)


def test_a_down_payment_computed_from_the_plan_is_grounded():
    assert check("10% down (EGP 725,000), the rest over 8 years").ok


def test_price_per_square_metre_is_grounded():
    assert check("EGP 7,250,000 for 120 m², about EGP 60,417 per m²").ok
    assert_miss(check("about EGP 65,000 per m²"), "unknown_price", "EGP 65,000")


def test_plain_numbers_in_listing_rows_are_accepted():
    floats = {**AMBER, "price": 7250000, "area_sqm": 120.0}
    assert check("EGP 7,250,000, 120 m²", listings=(floats,)).ok


@pytest.mark.parametrize("draft, price, ok", [
    ("الشقة بمليون ونص", 1_500_000, True),
    ("بنص مليون بس", 1_500_000, False),
    ("half a million", 500_000, True),
    ("مليونين", 2_000_000, True),
    ("one million and a half", 1_500_000, True),
])
def test_millions_without_digits(draft, price, ok):
    assert check(draft, listings=({**AMBER, "price": Decimal(price)},)).ok is ok


def test_no_listings_means_no_price_is_grounded():
    result = check("Prices start at EGP 5,000,000 and HP-101 is 7.25M", listings=())
    assert result.codes() == ["unknown_price", "unknown_reference"]
    assert "no listings were retrieved" in result.misses[0].detail
    assert check("Hello! What area are you looking in? I found 3 options last week.", listings=()).ok


# --- sizes, bedrooms, bathrooms ---------------------------------------------------------------------

@pytest.mark.parametrize("draft", [
    "120 m²", "120m2", "120 sqm", "120 sq m", "120 square meters", "١٢٠ م²", "١٢٠ م٢", "120 متر", "١٢٠ متر مربع",
    "120 metr", "3 bedrooms", "3-bed", "3BR", "3 غرف", "٣ غرف نوم", "3 owad", "talat owad", "three bedrooms",
    "تلات غرف", "Bedrooms: 3", "2 bathrooms", "2 bath", "٢ حمام", "حمامين", "2 7amam", "a 3-bedroom with 2 baths",
    "a swimming pool, 1 حمام سباحة",       # a pool is not a bathroom count
])
def test_sizes_and_rooms_are_grounded(draft):
    assert check(draft).ok, check(draft).feedback()


@pytest.mark.parametrize("draft, code, found", [
    ("It is 150 m² in total", "unknown_size", "150 m²"),
    ("المساحة ١٥٠ م²", "unknown_size", "١٥٠ م²"),
    ("المساحة ١٥٠ متر مربع", "unknown_size", "١٥٠ متر مربع"),
    ("A 4-bed apartment", "unknown_bedrooms", "4-bed"),
    ("شقة ٤ غرف نوم", "unknown_bedrooms", "٤ غرف نوم"),
    ("arba3a owad", "unknown_bedrooms", "arba3a owad"),
    ("2BR", "unknown_bedrooms", "2BR"),
    ("غرفتين وصالة", "unknown_bedrooms", "غرفتين"),
    ("3 bathrooms", "unknown_bedrooms", "3 bathrooms"),
    ("٣ حمامات", "unknown_bedrooms", "٣ حمامات"),
])
def test_invented_sizes_and_rooms_are_caught(draft, code, found):
    assert_miss(check(draft), code, found)


# --- references, dates, payment terms ---------------------------------------------------------------

@pytest.mark.parametrize("draft", [
    "HP-101 is a good fit", "Send me hp-101 again", "(HP-101)", "Delivery Jun 2027", "Delivery in June 2027",
    "التسليم يونيو ٢٠٢٧", "delivery 2027", "Q2 2027", "handover by end of 2028", "10% down", "١٠٪ مقدم",
    "مقدم 10%", "مقدم ١٠٪ والباقي على ٨ سنين", "a 10% down payment, then over 8 years", "على ٨ سنين",
    "8 years instalments", "10% down, 8-year plan", "mo2adam 10% w el ba2y 3ala tamanya sneen",
])
def test_references_dates_terms_are_grounded(draft):
    assert check(draft).ok, check(draft).feedback()


@pytest.mark.parametrize("draft, code, found", [
    ("Have a look at HP-999", "unknown_reference", "HP-999"),
    ("NH-0001 is great", "unknown_reference", "NH-0001"),
    ("Delivery Dec 2027", "unknown_date", "Dec 2027"),
    ("التسليم ديسمبر ٢٠٢٧", "unknown_date", "ديسمبر ٢٠٢٧"),
    ("Delivery in 2028", "unknown_date", "2028"),
    ("Delivery Q4 2027", "unknown_date", "Q4 2027"),
    ("Expected mid-2029", "unknown_date", "2029"),
    ("It is ready to move in!", "unknown_date", "ready to move"),
    ("الشقة استلام فوري", "unknown_date", "استلام فوري"),
    ("Only 5% down!", "unknown_payment_term", "5% down"),
    ("مقدم ١٥٪", "unknown_payment_term", "مقدم ١٥٪"),
    ("١٥٪ مقدم", "unknown_payment_term", "١٥٪ مقدم"),
    ("10% down, the rest over 10 years", "unknown_payment_term", "over 10 years"),
    ("والباقي على ٥ سنين", "unknown_payment_term", "على ٥ سنين"),
    ("8 years? no, 12 years of installments", "unknown_payment_term", "12 years"),
])
def test_invented_references_dates_terms_are_caught(draft, code, found):
    assert_miss(check(draft), code, found)


def test_ready_to_move_is_grounded_by_a_listing_without_delivery_date():
    assert check("Lotus Park is ready to move in", listings=(AMBER, {**LOTUS, "status": "available"})).ok


# --- numbers that are not listing figures ----------------------------------------------------------

@pytest.mark.parametrize("draft", [
    "Call me on +20 100 123 4567 or 01001234567.",
    "I can show it to you at 6pm, or 10:30 tomorrow.",
    "Viewing on June 14, 2025 or 15/6/2025 works.",
    "I found 3 listings for you:\n1. Amber Court\n2. Something else",
    "I'm 100% sure you will like it.",
    "It is 500m from the beach and 10 minutes from the ring road.",
    "Security 24/7, 2 pools and 3 gates.",
    "We have 20 years of experience since 2010.",
    "It is in the 5th Settlement, near 6th of October.",
    "الساعه ٦ مناسبة؟ لقيت ٣ اختيارات",
    "Delivery could be ready in 2 years after the contract, 10% down.",
])
def test_phones_times_counts_are_not_figures(draft):
    assert check(draft).ok, check(draft).feedback()


# --- the customer's own numbers ----------------------------------------------------------------------

@pytest.mark.parametrize("draft, customer", [
    ("You said your budget is 5 million; here is what I found: Amber Court (HP-101), EGP 7,250,000.",
     "my budget is 5 million"),
    ("A 3-bedroom under EGP 5,000,000 — here is what I found:\n1. Amber Court (HP-101): EGP 7,250,000",
     "3 bedrooms under 5m"),
    ("ميزانيتك ٥ مليون، ولقيت لك Amber Court بـ ٧٫٢٥ مليون", "ميزانيتي ٥ مليون"),
    ("Within 6 million I only have Amber Court (HP-101) at 7.25M, a bit above.", "6M max"),
    ("Sorry, no 4-bedroom in Maadi, but Amber Court (HP-101) has 3 bedrooms.", "4 bedrooms in maadi"),
    ("I couldn't find HP-777, but here is HP-101.", "what about HP-777?"),
    ("Nothing with delivery in 2030 yet.", "delivery 2030?"),
])
def test_the_customer_figures_may_be_echoed(draft, customer):
    assert check(draft, customer_text=customer).ok, check(draft, customer_text=customer).feedback()


@pytest.mark.parametrize("draft, customer, found", [
    ("Amber Court (HP-101) is EGP 5,000,000.", "budget 5 million", "EGP 5,000,000"),
    ("Amber Court is priced at 5 million.", "my budget is 5 million", "5 million"),
    ("أمبر كورت HP-101 سعرها ٥ مليون", "ميزانيتي ٥ مليون", "٥ مليون"),
])
def test_the_customer_figure_is_not_a_listing_price(draft, customer, found):
    assert_miss(check(draft, customer_text=customer), "unknown_price", found)


def test_a_reference_the_customer_typed_is_not_vouched_for():
    customer = "NH-0059 تاون هاوس في مصر الجديدة – متاح – صح؟"
    assert check("NH-0059 isn't one of the listings I can see, sorry.", customer_text=customer).ok
    assert_miss(check("أيوه صح 👍 NH-0059 التاون هاوس في مصر الجديدة متاحة", customer_text=customer),
                "unknown_reference", "NH-0059")


# --- sold and reserved -------------------------------------------------------------------------------

@pytest.mark.parametrize("draft, found", [
    ("Lotus Park (HP-102) is still available!", "Lotus Park (HP-102) is still available"),
    ("HP-102 is available for viewing", "HP-102 is available"),
    ("لوتس بارك HP-102 لسه متاحة", "HP-102 لسه متاحة"),
    ("Jasmine Court is still on the market", "Jasmine Court is still on the market"),
    ("HP-103 mawgoda", "HP-103 mawgoda"),
    ("Aywa fadya 👍 HP-103 (Jasmine Court)", "fadya 👍 HP-103 (Jasmine Court"),
    ("Available now: Amber Court (HP-101) and Lotus Park", "Available now: Amber Court (HP-101) and Lotus Park"),
])
def test_sold_or_reserved_presented_as_available(draft, found):
    assert_miss(check(draft, listings=(AMBER, LOTUS, JASMINE)), "unavailable_listing", found)


@pytest.mark.parametrize("draft", [
    "Lotus Park (HP-102) was sold, sorry. Amber Court (HP-101) is available.",
    "HP-103 is reserved at the moment.",
    "لوتس بارك HP-102 اتباعت، بس Amber Court متاحة",
    "HP-102 etba3et, bas HP-101 mawgoda",
    "Jasmine Court ma7gooza delwa2ty",
    "Lotus Park (HP-102) is no longer available.",
])
def test_naming_sold_or_reserved_as_such_is_fine(draft):
    result = check(draft, listings=(AMBER, LOTUS, JASMINE))
    assert result.ok, result.feedback()


# --- discounts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("draft, found", [
    ("I can do EGP 7,000,000 for you.", "I can do EGP"),
    ("We can offer a 5% discount this week.", "We can offer a 5% discount"),
    ("Book today and get 5% off", "5% off"),
    ("The price is negotiable.", "negotiable"),
    ("Best price for you: 7.25M", "Best price for you"),
    ("I'll get you a special price", "I'll get you a special price"),
    ("ممكن أعملك خصم ٥٪", "خصم ٥"),
    ("في تخفيض على الكاش", "تخفيض"),
    ("هعملك سعر خاص ليك", "سعر خاص ليك"),
    ("نقدر ننزل في السعر شوية", "نقدر ننزل"),
    ("momken nenzel shwaya", "momken nenzel"),
    ("fi khasm 3ala el cash", "khasm"),
    ("hanazelak 1.5M", "hanazelak"),
    ("لا متروحش 🙏 هنزلك ٢ مليون", "هنزلك"),             # "لا" here is "no, don't go", not a refusal
    ("No worries, I can do 7 million.", "I can do 7 million"),
])
def test_discount_offers(draft, found):
    assert_miss(check(draft), "discount", found)


@pytest.mark.parametrize("draft", [
    "The agent handles any price discussion.",
    "Any discount is up to the agent; he will discuss it with you.",
    "I can't offer a discount, but I can book you a viewing.",
    "No discounts, sorry.",
    "أي خصم أو تفاوض في السعر بيكون مع الوكيل مباشرة",
    "مش هقدر أعمل خصم، بس ممكن أرتب لك معاينة",
    "I can give you more photos of HP-101.",
    "I can do a viewing on Saturday at 11am.",
    "الأسعار وأي تخفيض سارة بتحددها بنفسها، بلغتها وهترد عليك هنا قريب 🙏",
])
def test_discount_look_alikes_do_not_fire(draft):
    assert check(draft).ok, check(draft).feedback()


# --- our own formatting passes -----------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "ar"])
@pytest.mark.parametrize("arabic_digits", [True, False])
@pytest.mark.parametrize("listing", [AMBER, LOTUS, JASMINE, STUDIO_USD], ids=lambda p: p["reference"])
def test_listing_cards_pass(listing, lang, arabic_digits):
    card = listing_card(listing, lang=lang, arabic_digits=arabic_digits)
    result = check(card, listings=(listing,))
    assert result.ok, card + "\n" + result.feedback()


@pytest.mark.parametrize("lang", ["en", "ar"])
@pytest.mark.parametrize("arabic_digits", [True, False])
def test_short_lists_pass(lang, arabic_digits):
    listings = (AMBER, LOTUS, JASMINE)
    text = short_list(list(listings), lang=lang, arabic_digits=arabic_digits)
    assert check(text, listings=listings).ok, text


def test_a_realistic_arabic_reply_passes_and_a_changed_figure_fails():
    listings = [AMBER, {**AMBER, "reference": "HP-104", "project_name": "Nile Bay", "bedrooms": 4,
                        "price": Decimal("9850000"), "area_sqm": Decimal("175"), "delivery_date": date(2028, 3, 1),
                        "payment_plan": "15% down, 7 years"}]
    reply = ("أهلاً بحضرتك! ميزانيتك في حدود ١٠ مليون، ولقيت لك اختيارين في المعادي:\n"
             + short_list(listings, lang="ar") + "\n\nتفاصيل الأول:\n" + listing_card(AMBER, lang="ar")
             + "\n\nتحب أرتب لك معاينة يوم السبت الساعة ٦؟ رقم الوكيل ٠١٠٠١٢٣٤٥٦٧")
    assert "٧٬٢٥٠٬٠٠٠ جنيه" in reply and "١٢٠ م²" in reply and "التسليم يونيو ٢٠٢٧" in reply
    result = check_draft(reply, listings=listings, customer_text="عايز شقة في المعادي بحدود ١٠ مليون")
    assert result.ok, result.feedback()
    wrong = check_draft(reply.replace("٧٬٢٥٠٬٠٠٠", "٦٬٩٠٠٬٠٠٠"), listings=listings)
    assert [(m.code, m.found) for m in wrong.misses] == [("unknown_price", "٦٬٩٠٠٬٠٠٠ جنيه")]


DEMO_CSV = Path(__file__).resolve().parents[1] / "execution" / "demo_data" / "listings_nile_homes.csv"


def _demo_rows() -> list[dict]:
    rows = []
    for r in csv.DictReader(DEMO_CSV.open(encoding="utf-8")):
        number = lambda key, kind: kind(r[key]) if r[key] else None  # noqa: E731
        rows.append({**r, "bedrooms": number("bedrooms", int), "bathrooms": number("bathrooms", int),
                     "area_sqm": number("area_sqm", Decimal), "price": Decimal(r["price"]),
                     "payment_plan": r["payment_plan"] or None,
                     "delivery_date": date.fromisoformat(r["delivery"]) if r["delivery"][:1].isdigit() else None,
                     "amenities": [a.strip() for a in r["amenities"].split(";") if a.strip()]})
    return rows


@pytest.mark.parametrize("lang, arabic_digits", [("en", False), ("ar", True), ("ar", False)])
def test_every_demo_listing_passes_as_formatted(lang, arabic_digits):
    rows = _demo_rows()
    for row in rows:
        card = listing_card(row, lang=lang, arabic_digits=arabic_digits)
        assert check(card, listings=(row,)).ok, card + "\n" + check(card, listings=(row,)).feedback()
    for i in range(0, len(rows), 3):
        text = short_list(rows[i:i + 3], lang=lang, arabic_digits=arabic_digits)
        assert check(text, listings=rows[i:i + 3]).ok, text
    # and against another listing, every card has a figure that is not grounded
    caught = sum(not check(listing_card(row, lang=lang), listings=(rows[(i + 7) % len(rows)],)).ok
                 for i, row in enumerate(rows))
    assert caught == len(rows)


def test_a_card_against_another_listing_fails_on_every_kind():
    card = listing_card(AMBER, lang="ar")
    other = {**LOTUS, "status": "available", "delivery_date": date(2029, 3, 1)}
    assert check(card, listings=(other,)).codes() == [
        "unknown_reference", "unknown_bedrooms", "unknown_price", "unknown_size", "unknown_date",
        "unknown_payment_term"]


# --- the result --------------------------------------------------------------------------------------

def test_feedback_names_each_miss_and_codes_are_distinct():
    result = check("Amber Court (HP-101): EGP 6,900,000, 4 bedrooms, 150 m², 6.5M for HP-555. I can give you a "
                   "special price!", listings=(AMBER,))
    assert result.codes() == ["unknown_price", "unknown_bedrooms", "unknown_size", "unknown_reference", "discount"]
    lines = result.feedback().splitlines()
    assert len(lines) == len(result.misses) == 6
    for miss, line in zip(result.misses, lines):
        assert miss.found in line and miss.code in line
    assert check("EGP 7,250,000").feedback() == "" and check("EGP 7,250,000").codes() == []
