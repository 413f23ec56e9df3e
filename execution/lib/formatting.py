"""Listings as WhatsApp text: a card, a short list, prices, and the location pin, in English and Arabic.

WhatsApp markup only (`*bold*`); every figure comes from the listing row, never from elsewhere.
References keep Latin digits in every language so a customer can send them back as written.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

_ARABIC_DIGITS = str.maketrans("0123456789,.", "٠١٢٣٤٥٦٧٨٩٬٫")
_MONTHS_AR = ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر",
              "نوفمبر", "ديسمبر")
_CURRENCY_AR = {"EGP": "جنيه", "USD": "دولار", "EUR": "يورو", "GBP": "جنيه إسترليني", "AED": "درهم",
                "SAR": "ريال", "NGN": "نيرة"}
_TYPE_AR = {"apartment": "شقة", "villa": "فيلا", "chalet": "شاليه", "duplex": "دوبلكس", "townhouse": "تاون هاوس",
            "twin house": "توين هاوس", "studio": "ستوديو", "penthouse": "بنتهاوس"}
_AMENITY_AR = {"swimming pool": "حمام سباحة", "gym": "جيم", "private garden": "حديقة خاصة",
               "landscaped gardens": "مساحات خضراء", "sea view": "إطلالة على البحر", "security 24/7": "أمن ٢٤ ساعة",
               "underground parking": "جراج تحت الأرض", "clubhouse": "كلوب هاوس", "kids area": "منطقة أطفال",
               "school nearby": "مدرسة قريبة", "mosque": "مسجد", "smart home": "سمارت هوم", "roof terrace": "روف",
               "jogging track": "ممشى للجري", "commercial strip": "منطقة تجارية"}
_CITY_AR = {"cairo": "القاهرة", "giza": "الجيزة", "alexandria": "الإسكندرية", "matrouh": "مطروح",
            "north coast": "الساحل الشمالي", "red sea": "البحر الأحمر", "sharqia": "الشرقية", "qalyubia": "القليوبية",
            "ismailia": "الإسماعيلية", "suez": "السويس"}
_STATUS = {"en": {"reserved": "reserved", "sold": "sold"}, "ar": {"reserved": "محجوزة", "sold": "مباعة"}}


def digits(text: str, *, lang: str, arabic_digits: bool = True) -> str:
    """Arabic-Indic digits (and ٬ ٫ separators) in Arabic text when asked; unchanged otherwise."""
    return text.translate(_ARABIC_DIGITS) if lang == "ar" and arabic_digits else text


def _amount(value: Decimal | int | float) -> str:
    value = Decimal(value)
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def format_price(price, currency: str, *, lang: str, listing_type: str = "sale", arabic_digits: bool = True) -> str:
    """`EGP 7,250,000`, `EGP 30,000 / month`; in Arabic `٧٬٢٥٠٬٠٠٠ جنيه`, `٣٠٬٠٠٠ جنيه في الشهر`."""
    amount = _amount(price)
    if lang == "ar":
        text = f"{digits(amount, lang=lang, arabic_digits=arabic_digits)} {_CURRENCY_AR.get(currency, currency)}"
        return text + (" في الشهر" if listing_type == "rent" else "")
    return f"{currency} {amount}" + (" / month" if listing_type == "rent" else "")


def delivery_text(delivery: date | None, *, lang: str, arabic_digits: bool = True) -> str:
    if delivery is None:
        return "استلام فوري" if lang == "ar" else "Ready to move in"
    if lang == "ar":
        return f"التسليم {_MONTHS_AR[delivery.month - 1]} {digits(str(delivery.year), lang=lang, arabic_digits=arabic_digits)}"
    return f"Delivery {delivery.strftime('%b %Y')}"


def payment_plan_ar(plan: str) -> str:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*down,?\s*(\d+)\s*years?\s*", plan, re.IGNORECASE)
    return f"مقدم {match.group(1)}٪ والباقي على {match.group(2)} سنين" if match else plan


def _headline(p: dict, lang: str, arabic_digits: bool) -> str:
    beds, ptype = p.get("bedrooms"), p["property_type"]
    place = (p.get("district_ar") or p.get("district")) if lang == "ar" else p.get("district")
    if lang == "ar":
        parts = [_TYPE_AR.get(ptype, ptype)]
        if beds and ptype != "studio":
            parts.append(digits(f"{beds} غرف", lang=lang, arabic_digits=arabic_digits))
        parts.append("للإيجار" if p["listing_type"] == "rent" else "للبيع")
        if place:
            parts.append(f"في {place}")
        return " ".join(parts)
    kind = f"{beds}-bedroom {ptype}" if beds and ptype != "studio" else ptype.capitalize()
    text = f"{kind} for {'rent' if p['listing_type'] == 'rent' else 'sale'}"
    return text + (f" in {place}" if place else "")


def listing_card(p: dict, *, lang: str, arabic_digits: bool = True) -> str:
    """One listing in full, for a customer who asked about it."""
    d = lambda s: digits(s, lang=lang, arabic_digits=arabic_digits)  # noqa: E731
    title = p.get("project_name") or _headline(p, lang, arabic_digits)
    lines = [f"*{title}* · {p['reference']}", _headline(p, lang, arabic_digits)]
    status = _STATUS[lang if lang == "ar" else "en"].get(p.get("status"))
    if status:
        lines[0] += f" ({status})"
    lines.append("💰 " + format_price(p["price"], p["currency"], lang=lang, listing_type=p["listing_type"],
                                     arabic_digits=arabic_digits))
    size = []
    if p.get("area_sqm"):
        size.append(d(f"{_amount(p['area_sqm'])} م²") if lang == "ar" else f"{_amount(p['area_sqm'])} m²")
    if p.get("bedrooms"):
        size.append(d(f"{p['bedrooms']} غرف") if lang == "ar" else f"{p['bedrooms']} bed")
    if p.get("bathrooms"):
        size.append(d(f"{p['bathrooms']} حمام") if lang == "ar" else f"{p['bathrooms']} bath")
    if size:
        lines.append("📐 " + " · ".join(size))
    terms = [delivery_text(p.get("delivery_date"), lang=lang, arabic_digits=arabic_digits)]
    if p.get("payment_plan"):
        terms.append(d(payment_plan_ar(p["payment_plan"])) if lang == "ar" else p["payment_plan"])
    lines.append("🗓 " + " · ".join(terms))
    if p.get("amenities"):
        lines.append("✨ " + amenities_text(p["amenities"], lang=lang))
    return "\n".join(lines)


def amenities_text(amenities, *, lang: str) -> str:
    names = [_AMENITY_AR.get(a, a) for a in amenities] if lang == "ar" else list(amenities)
    return ("، " if lang == "ar" else ", ").join(names)


def short_list(properties: list[dict], *, lang: str, arabic_digits: bool = True, limit: int = 3) -> str:
    """The top few listings, one line each with its reference, numbered."""
    lines = []
    for number, p in enumerate(properties[:limit], start=1):
        name = p.get("project_name") or p["reference"]
        price = format_price(p["price"], p["currency"], lang=lang, listing_type=p["listing_type"],
                             arabic_digits=arabic_digits)
        index = digits(str(number), lang=lang, arabic_digits=arabic_digits)
        lines.append(f"{index}. *{name}*: {_headline(p, lang, arabic_digits)}، {price} ({p['reference']})"
                     if lang == "ar" else
                     f"{index}. *{name}*: {_headline(p, lang, arabic_digits)}, {price} ({p['reference']})")
    return "\n".join(lines)


def location_pin(p: dict, *, lang: str) -> dict | None:
    """The fields of a sendLocation message for a listing with coordinates; None without them."""
    if p.get("latitude") is None or p.get("longitude") is None:
        return None
    place = (p.get("district_ar") or p.get("district")) if lang == "ar" else p.get("district")
    return {
        "kind": "location",
        "latitude": float(p["latitude"]),
        "longitude": float(p["longitude"]),
        "name": f"{p.get('project_name') or p['reference']} ({p['reference']})",
        "address": ("، " if lang == "ar" else ", ").join(x for x in (place, city_name(p, lang)) if x) or None,
    }


_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ar": ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد"),
    "arabizi": ("el etnein", "el talat", "el arba3", "el khamis", "el gom3a", "el sabt", "el 7ad"),
}
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def when_text(moment, *, lang: str, timezone: str, arabic_digits: bool = True) -> str:
    """A viewing's time as a customer reads it, in the agent's time zone: "Sunday 29 November, 6:00 pm"."""
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(timezone))
    hour12 = local.hour % 12 or 12
    clock = f"{hour12}:{local.minute:02d}"
    day = _WEEKDAYS.get(lang, _WEEKDAYS["en"])[local.weekday()]
    if lang == "ar":
        part = "صباحاً" if local.hour < 12 else "مساءً"
        return digits(f"{day} {local.day} {_MONTHS_AR[local.month - 1]}، الساعة {clock} {part}", lang="ar",
                      arabic_digits=arabic_digits)
    if lang == "arabizi":
        part = "el sob7" if local.hour < 12 else ("ba3d el dohr" if local.hour < 17 else "bel leil")
        return f"{day} {local.day}/{local.month} el sa3a {clock} {part}"
    return f"{day} {local.day} {_MONTHS_EN[local.month - 1]}, {clock} {'am' if local.hour < 12 else 'pm'}"


def address_text(p: dict, *, lang: str) -> str:
    """Where a listing is, from its own fields (project, district, city)."""
    place = (p.get("district_ar") or p.get("district")) if lang == "ar" else p.get("district")
    parts = [x for x in (p.get("project_name"), place, city_name(p, lang)) if x]
    return ("، " if lang == "ar" else ", ").join(parts) or p["reference"]


def city_name(p: dict, lang: str) -> str | None:
    """The listing's city, in Arabic for an Arabic reply when it is a known one."""
    city = p.get("city")
    return _CITY_AR.get(city.strip().lower(), city) if city and lang == "ar" else city
