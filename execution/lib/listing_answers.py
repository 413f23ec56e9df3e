"""What a customer asks about one listing, answered from its row with the persona's templates.

`answer(question, listing, t, lang=…, arabic_digits=…)`: `question` is one of
conversation_state.QUESTIONS; `t(name, **placeholders)` renders a persona template. Every figure
comes from the listing row; a field the row lacks gets the template that says the agent will follow up.
"""

from __future__ import annotations

import re
from decimal import Decimal

from execution.lib import formatting


def plan_ar(plan: str) -> str:
    """A payment plan in Arabic, each alternative on its own: "cash; or 5% down, 6 years (+8%)" too."""
    out = []
    for piece in re.split(r"\s*;\s*(?:or\s+)?|\s+or\s+", plan.strip()):
        match = re.fullmatch(r"(.*?)\s*(\(\s*\+?\s*\d+(?:\.\d+)?\s*%\s*\))?", piece)
        core, extra = match.group(1), match.group(2)
        core = "كاش" if core.lower() == "cash" else formatting.payment_plan_ar(core)
        out.append(core + (" " + extra.replace("%", "٪") if extra else ""))
    return "؛ أو ".join(p for p in out if p.strip())


def answer(question: str, listing: dict, t, *, lang: str, arabic_digits: bool) -> str:
    """One sentence from the persona's templates (`t`) answering `question` about `listing`, in `lang` (en / ar)."""
    ref = listing["reference"]
    d = lambda s: formatting.digits(s, lang=lang, arabic_digits=arabic_digits)  # noqa: E731
    if question == "payment_plan":
        if not listing.get("payment_plan"):
            return t("no_payment_plan", reference=ref)
        plan = listing["payment_plan"]
        return t("payment_plan", reference=ref, payment_plan=d(plan_ar(plan)) if lang == "ar" else plan)
    if question == "delivery":
        return t("delivery", reference=ref, delivery=formatting.delivery_text(
            listing.get("delivery_date"), lang=lang, arabic_digits=arabic_digits))
    if question == "location":
        place = listing.get("district_ar") if lang == "ar" else None
        return t("location", reference=ref, location=place or ", ".join(
            x for x in (listing.get("district"), listing.get("city")) if x))
    if question == "photos":
        return t("photos" if listing.get("images") else "no_photos", reference=ref)
    if question == "availability":
        return t(f"status_{listing['status']}", reference=ref)
    if question == "price":
        return t("price", reference=ref, price=formatting.format_price(
            listing["price"], listing["currency"], lang=lang, listing_type=listing["listing_type"],
            arabic_digits=arabic_digits))
    if question == "size":
        if listing.get("area_sqm") is None:
            return t("unknown")
        sqm = f"{Decimal(listing['area_sqm']):,.0f}"
        return t("size", reference=ref, size=d(f"{sqm} م²") if lang == "ar" else f"{sqm} m²")
    if not listing.get("amenities"):
        return t("no_amenities", reference=ref)
    return t("amenities", reference=ref, amenities=formatting.amenities_text(listing["amenities"], lang=lang))
