"""The grounding guard: a drafted reply may only state figures of the listings retrieved in this conversation.

`check_draft(draft, listings=…, customer_text=…)` reads every price, size, bedroom and bathroom count,
reference, delivery date and payment term in a draft (English, Egyptian Arabic, Arabizi; Latin or
Arabic-Indic digits) and compares it with the listings. A figure is grounded when it equals a figure of
the same kind of some listing within the rounding of how it is written ("7.3M" covers 7,250,000;
"EGP 7,300,000" does not; a down payment or a price per m² computed from a listing counts as its figure),
or when the customer said it this turn and the draft does not attach it to a listing: it is framed as
their budget or request ("under", "budget", "no 4-bedroom"), or its sentence names no listing and, for a
price, says no "price". A reference the customer typed may be repeated, never called available.
It also refuses a sold/reserved listing presented as available, and any offer of a discount.

Bare small numbers (list numbers, counts, times, phone numbers) are never read as figures: a number is
read only with a unit, a currency, a multiplier or a keyword. Vocabulary lives in the tuples below.
Matching runs on `text.normalize`d text (plus ٬ ٫ ٪); every span maps back to the draft for `found`.
Bathroom counts are reported under `unknown_bedrooms` (the interface has one code for room counts).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from execution.lib.criteria import (BEDROOM_WORDS, MILLION_WORDS, NUMBER_WORDS, THOUSAND_WORDS, TWO_BEDROOM_WORDS,
                                    _alternation)
from execution.lib.formatting import delivery_text, format_price
from execution.lib.text import normalize

# --- vocabulary (normalised when the patterns are built) ---------------------------------------------

NUMBERS = {**NUMBER_WORDS, "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "thirty": 30, "تمانيه": 8, "تمان": 8,
           "ثمانيه": 8, "ثماني": 8, "تسعه": 9, "تسع": 9, "عشره": 10, "عشر": 10, "عشرين": 20, "تلاتين": 30,
           "ثلاثين": 30, "اربعين": 40, "خمسين": 50, "seta": 6, "sab3a": 7, "saba3a": 7, "tamanya": 8,
           "tmanya": 8, "tes3a": 9, "tis3a": 9, "3ashra": 10, "ashra": 10, "wa7da": 1}
CURRENCIES = {
    **dict.fromkeys(("egp", "le", "l.e.", "l.e", "جنيه", "جنيها", "جنيهات", "ج.م.", "ج.م", "geneh", "gneh",
                     "egyptian pounds"), ("EGP",)),
    **dict.fromkeys(("£", "pounds", "pound"), ("EGP", "GBP")),
    **dict.fromkeys(("gbp", "جنيه استرليني", "sterling"), ("GBP",)),
    **dict.fromkeys(("$", "usd", "us$", "dollars", "dollar", "دولار"), ("USD",)),
    **dict.fromkeys(("eur", "€", "euro", "euros", "يورو"), ("EUR",)),
    **dict.fromkeys(("aed", "درهم", "دراهم", "dirhams"), ("AED",)),
    **dict.fromkeys(("sar", "ريال", "riyals"), ("SAR",)),
    **dict.fromkeys(("ngn", "نيره"), ("NGN",)),
}
MULTIPLIERS = tuple(w for w in MILLION_WORDS if w != "مليونين") + (*THOUSAND_WORDS, "thousands")
ALONE = {"مليون": 1, "million": 1, "malyon": 1, "milion": 1, "مليونين": 2, "malyoneen": 2}   # no number before
BEFORE_ALONE = {"نص": .5, "نصف": .5, "ربع": .25, "half a": .5, "a quarter": .25, "nos": .5, "rob3": .25}
FRACTIONS = {"و ربع": .25, "و نص": .5, "و نصف": .5, "الا ربع": -.25, "and a quarter": .25, "and a half": .5,
             "w rob3": .25, "we rob3": .25, "wa rob3": .25, "w nos": .5, "we nos": .5, "w noss": .5,
             "ella rob3": -.25, "illa rob3": -.25}
MONTHLY = ("/ month", "/month", "a month", "per month", "monthly", "في الشهر", "شهريا", "بالشهر", "fel shahr")
SIZE_UNITS = ("m²", "m2", "sqm", "sq m", "sq. m", "sq.m", "square meters", "square metres", "meters", "metres",
              "meter", "metre", "متر مربع", "مترمربع", "متر", "مترا", "م²", "م2", "metr", "mitr")
BATHROOM_WORDS = ("bathrooms", "bathroom", "baths", "bath", "حمامات", "حمام", "7amamat", "7amam", "7mam")
TWO_BATHROOM_WORDS = ("حمامين", "7amameen", "7amamein")
PAYMENT_WORDS = ("down payment", "downpayment", "down", "deposit", "upfront", "up front", "advance", "مقدم",
                 "المقدم", "مقدمه", "كمقدم", "دفعه مقدمه", "mo2adam", "mokadam", "m2adam", "mu2adam")
PERCENT = ("%", "percent", "per cent", "في الميه", "بالميه")
YEAR_WORDS = ("years", "year", "yrs", "yr", "سنين", "سنوات", "سنه", "sneen", "snin", "sanawat", "sana")
OVER_WORDS = ("over", "across", "on", "spread over", "على", "ع", "3ala", "ala", "3la")
NOT_TERM_WORDS = ("in", "within", "after", "خلال", "في", "بعد", "fi", "fe", "ba3d")   # "ready in 2 years"
INSTALMENT_WORDS = ("installments", "instalments", "installment", "instalment", "plan", "payment", "payments",
                    "تقسيط", "اقساط", "قسط", "ta2seet", "taseet", "a2sat") + PAYMENT_WORDS
MONTHS = {**{m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                         "september", "october", "november", "december"), 1)},
          **{m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                         "nov", "dec"), 1)}, "sept": 9,
          **{m: i for i, m in enumerate(("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس",
                                         "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"), 1)}, "يونيه": 6, "يوليه": 7}
BEFORE_WORDS = ("before", "by", "until", "no later than", "قبل", "لحد")       # "by 2028": delivered no later
AFTER_WORDS = ("after", "from", "starting", "بعد", "من")
READY_WORDS = ("ready to move", "move-in ready", "ready for delivery", "immediate delivery", "immediate handover",
               "استلام فوري", "تسليم فوري", "جاهز للسكن", "جاهزه للسكن", "جاهزه للاستلام", "جاهز للاستلام",
               "estlam fawry", "estelam fawry", "estlam fawri")
NEGATIONS = ("not", "no", "isn't", "aren't", "can't", "cannot", "can not", "unable", "don't", "won't", "never",
             "لا يمكن", "لا اقدر", "لا نقدر", "لا يوجد", "لا استطيع", "مش", "غير", "مفيش", "مقدرش", "ماقدرش",
             "مينفعش", "msh", "mesh", "mafish", "mafeesh", "ma2darsh", "mayenfa3sh")
ECHO_CUES = ("budget", "under", "below", "up to", "within", "less than", "max", "maximum", "you said", "you mentioned",
             "you asked for", "asked for", "looking for", "couldn't find", "could not find", "don't have", "no",
             "not", "ميزانيتك", "ميزانيه", "تحت", "اقل من", "لحد", "في حدود", "حدود", "طلبت", "قلت", "بتدور علي",
             "مفيش", "مش", "لا يوجد", "mizaneytak", "mizanitak", "ta7t", "a2al men", "le7ad", "7odod", "2olt",
             "mafeesh", "mafish", "msh", "mesh")
PRICE_CUES = ("price", "priced", "costs", "cost", "سعر", "سعرها", "بسعر", "ثمن", "se3r", "se3rha", "b se3r")
AVAILABLE_WORDS = ("available", "still on the market", "on the market", "you can buy", "you can book",
                   "you can reserve", "you can get", "can be yours", "open for booking", "متاح", "متاحه", "متوفر",
                   "متوفره", "موجود", "موجوده", "تقدر تحجز", "ممكن تحجز", "تقدر تشتري", "mawgoda", "mawgood",
                   "matah", "mata7", "mata7a", "motaha", "mota7a", "فاضي", "فاضيه", "fady", "fadya", "fadia", "fadi")
UNAVAILABLE_WORDS = ("sold", "reserved", "no longer", "not available", "unavailable", "off the market", "taken",
                     "مباع", "مباعه", "اتباعت", "اتباع", "محجوز", "محجوزه", "اتحجزت", "مش متاح", "غير متاح", "etba3et",
                     "et7agazet", "ma7gooz", "ma7goza", "ma7gooza", "mab3oua", "mab3oo3a")
DISCOUNT_OFFERS = (   # always an offer, unless negated just before
    r"\d+(?:\.\d+)?\s*%\s*(?:off|discount|خصم|تخفيض|khasm|5asm)",
    r"(?:discount|خصم|تخفيض|khasm)\s*(?:of|بنسبه)?\s*\d+(?![a-z\d])",
    r"(?:i|we)\s*(?:can|could|will|'ll)\s*(?:do|offer|give|get)\b[^.!?\n]{0,20}?(?:egp|\$|£|discount|deal|special "
    r"price|better price|lower|reduc|\d[\d,.]*\s*(?:m|mn|k|million|%|مليون)(?![a-z]))(?:\s*(?:discount|off))?",
    r"(?:best|lower) price for you", r"(?:lower|reduce|bring down) the price", r"knock\s*off",
    r"go\s*(?:down|lower) on the price", r"(?:نقدر|ممكن|اقدر)\s*ننزل", r"هنزلك|ننزلك|انزلك",
    r"(?:ه|ا|ن)خصملك", r"سعر خاص (?:ليك|ليكي|لحضرتك)", r"(?:momken|ne2dar|a2dar)\s*(?:nenzel|anzel)", r"hana?zz?ela?k")
DISCOUNT_MENTIONS = (  # an offer unless the sentence hands it to the agent or negates it
    r"discounts?|discounted|negotiable|negotiat\w*|special (?:price|offer)",
    r"reduced price|خصم|خصومات|تخفيض|سعر خاص|عرض خاص|قابل للتفاوض|تفاوض|فصال|khasm|5asm|se3r (?:khas|5as)|takhfeed")
NOT_FIGURES = (        # read first and skipped: phone numbers, times of day, calendar dates (appointments)
    r"(?<![\w.,])(?:\+|00|0)\d[\d \-()]{7,}\d", r"(?<![\w.,])\d{1,2}(?::\d\d)?\s*(?:am|pm|a\.m|p\.m)(?![a-z])",
    r"(?<![\w.,])\d{1,2}:\d\d", r"(?:الساعه|el sa3a)\s*\d{1,2}(?::\d\d)?",
    r"(?<![0-9])\d{1,2}(?:st|nd|rd|th)?\s*(?:of\s*)?MONTH,?\s*20\d\d", r"MONTH\s*\d{1,2}(?:st|nd|rd|th)?,?\s*20\d\d",
    r"\d{1,2}[/.-]\d{1,2}[/.-]20\d\d", r"20\d\d-\d\d-\d\d")
NOT_REFERENCES = ("mid", "end", "early", "late", "covid", "pre", "post", "top", "up")   # "mid-2029" is a date
HANDOFFS = (           # a discount mention in a sentence with one of these is handed to the agent, not offered
    r"agent", r"broker", r"colleague", r"sales team", r"الوكيل", r"الوسيط", r"السمسار", r"المسؤول", r"زميلي",
    r"el wakeel", r"el semsar", r"decides?\b", r"handles?\b", r"discuss", r"will (?:get back|reply|contact|call)",
    r"(?:ب|ه)?[يت]حدد", r"(?:ب|ه)?[يت]قرر", r"(?:ه|ب)[يت]رد", r"(?:ه|ب)[يت]تواصل", r"(?:ه|ب)[يت]كلم",
    r"hat?(?:rod|kalem)", r"hay(?:rod|kalem)")

# --- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Miss:
    code: str      # unknown_price, unknown_size, unknown_bedrooms, unknown_reference, unknown_date,
    found: str     # unknown_payment_term, unavailable_listing, discount; `found` is the draft's own span
    detail: str    # one English sentence for the model's retry and for the agent


@dataclass(frozen=True)
class GuardResult:
    ok: bool
    misses: tuple[Miss, ...]

    def codes(self) -> list[str]:
        """The distinct codes, in the order they were found."""
        return list(dict.fromkeys(m.code for m in self.misses))

    def feedback(self) -> str:
        """One line per miss, naming what the draft said, to send back to the model on a retry."""
        return "\n".join(f"- [{m.code}] {m.detail}" for m in self.misses)


@dataclass(frozen=True)
class _Figure:
    kind: str            # price size bedrooms bathrooms percent years date ready reference (noise: not checked)
    value: object = None
    span: tuple[int, int] = (0, 0)
    tol: Decimal = Decimal(0)
    currency: tuple[str, ...] = ()


# --- reading ------------------------------------------------------------------------------------------

_L = r"a-z\u0621-\u064a"
_NUM = r"(?<![0-9a-z.,])(?:\d{1,3}(?: \d{3})+(?!\d)|\d+(?:[.,]\d+)*)"
_RANGE = r"(?:-|–|to|till|الي|ل|لحد|and|و|w)"
_FOLD = str.maketrans({"٬": ",", "٫": ".", "٪": "%", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "’": "'"})
_NUMBERS = {normalize(k): v for k, v in NUMBERS.items()}
_MONTHS = {normalize(k): v for k, v in MONTHS.items()}


def _lookup(table: dict, said: str):
    """A table entry by its written form, whatever the spacing: "وربع" is "و ربع"."""
    return {re.sub(r"\s+", "", normalize(k)): v for k, v in table.items()}[re.sub(r"\s+", "", said)]


def _alt(words) -> str:
    return rf"(?<![{_L}0-9])(?:{_alternation(words)})(?![{_L}0-9])"


def _loose(words) -> str:
    return "|".join(re.escape(normalize(w)).replace(r"\ ", r"\s*") for w in sorted(words, key=len, reverse=True))


def _fold(text: str) -> tuple[str, list[int]]:
    """`normalize(text)` one character at a time, with the draft index of each folded character."""
    out, origin = [], []
    for i, ch in enumerate(text):
        folded = normalize(ch.translate(_FOLD))
        out.append(folded)
        origin += [i] * len(folded)
    return "".join(out), origin


def _number(raw: str, decimal_point: bool = False) -> tuple[Decimal, int]:
    """7,250,000 / 7.250.000 / 7 250 000 / 7,25 / 7.25 → (value, decimals written). One separator before
    exactly three digits is a thousands separator unless a million follows ("7.250 million" is 7.25)."""
    raw = raw.replace(" ", "")
    seps = [c for c in raw if c in ".,"]
    if not seps:
        return Decimal(raw), 0
    if len(set(seps)) == 1 and (len(seps) > 1 or (len(raw.split(seps[0])[1]) == 3 and not decimal_point)):
        return Decimal(raw.replace(seps[0], "")), 0
    whole, frac = raw.rsplit(seps[-1], 1)
    return Decimal(re.sub(r"[.,]", "", whole) + "." + frac), len(frac)


def _half_unit(decimals: int) -> Decimal:
    return Decimal("0.5") * Decimal(10) ** -decimals


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    word = rf"(?<![{_L}0-9])[بو]?"      # a word's start, with the Arabic clitics that glue to numbers: بـ و
    num_word = rf"{word}(?P<w>{_alternation(NUMBERS)})(?![{_L}0-9])"
    count = rf"(?:(?P<n>{_NUM})|{num_word})\s*-?\s*"
    cur = rf"(?<![{_L}])(?:{_alternation(CURRENCIES)})(?![{_L}])"
    return {
        "reference": re.compile(rf"(?<![a-z0-9-])(?!(?:{'|'.join(NOT_REFERENCES)})-)[a-z]{{1,5}}-\d{{1,8}}"
                                r"(?![a-z0-9-])"),
        "noise": re.compile("|".join(f"(?:{x})" for x in NOT_FIGURES).replace("MONTH", _alt(MONTHS))),
        "size": re.compile(rf"(?P<n>{_NUM})\s*(?:{_loose(SIZE_UNITS)})(?![{_L}0-9²])(?!\s*(?:from|away|to|من|عن))"),
        "bedrooms": re.compile(rf"{count}(?:{_alternation(BEDROOM_WORDS)})(?![{_L}0-9])|bedrooms?\s*:\s*(?P<n2>\d+)"
                               rf"|{_alt(TWO_BEDROOM_WORDS)}"),
        "bathrooms": re.compile(rf"{count}(?:{_alternation(BATHROOM_WORDS)})(?![{_L}0-9])(?!\s*سباحه)"
                                rf"|bathrooms?\s*:\s*(?P<n2>\d+)|{_alt(TWO_BATHROOM_WORDS)}"),
        "percent": re.compile(rf"(?P<n>{_NUM})\s*(?:{_loose(PERCENT)})\s*(?:of the price\s*)?(?:as\s*(?:a\s*)?)?"
                              rf"{_alt(PAYMENT_WORDS)}|{_alt(PAYMENT_WORDS)}\s*(?:of|بنسبه|:)?\s*(?P<n2>{_NUM})\s*"
                              rf"(?:{_loose(PERCENT)})"),
        "years": re.compile(rf"(?:(?P<pre>{_alt(OVER_WORDS + NOT_TERM_WORDS)})\s*)?{count}{_alt(YEAR_WORDS)}"),
        "ready": re.compile(_alt(READY_WORDS)),
        "date": re.compile(rf"(?:(?P<month>{_alt(MONTHS)})\.?,?\s*(?:of\s*)?|(?<![a-z])q(?P<q>[1-4])\s*)?"
                           r"(?<![0-9.,])(?P<year>20\d\d)(?![0-9]|[.,]\d)"),
        "price": re.compile(   # currency? (number | number word) multiplier? | (half)? million; fraction; currency?
            rf"(?:(?P<cur1>{cur})\s*)?(?:(?:(?P<n>(?<![0-9.,])\d{{1,3}}(?: \d{{3}})+(?!\d)|\d+(?:[.,]\d+)*)|"
            rf"{num_word})\s*(?P<mult>{_alternation(MULTIPLIERS)})?(?![{_L}0-9²]|[.,]\d)|"
            rf"(?:{word}(?P<pre>{_alternation(BEFORE_ALONE)})\s*)?{word}(?P<alone>{_alternation(ALONE)})(?![{_L}0-9]))"
            rf"(?:\s*(?P<frac>{_loose(FRACTIONS)})(?![{_L}])|\s*(?:و|and|w|we)?\s*(?P<k>\d{{1,3}})\s*"
            rf"(?:{_alternation(THOUSAND_WORDS)})(?![{_L}]))?(?:\s*(?P<cur2>{cur}))?"),
        "monthly": re.compile(rf"\s*(?:{_loose(MONTHLY)})"),
        "range_next": re.compile(rf"\s*{_RANGE}\s*\d[\d.,]*\s*(?:{_alternation(MULTIPLIERS)})"),
        "range": re.compile(rf"(?P<lo>{_NUM})\s*{_RANGE}\s*$"),
        "before": re.compile(rf"{_alt(BEFORE_WORDS)}\s*(?:(?:the\s*)?end\s*of\s*|نهايه\s*)?$"),
        "after": re.compile(rf"{_alt(AFTER_WORDS)}\s*$"),
        "negation": re.compile(rf"{_alt(NEGATIONS)}(?:\s+[\w']+){{0,2}}\s*$"),   # "can't offer a", not "no, …"
        "echo": re.compile(rf"{_alt(ECHO_CUES)}\W*(?:\w+\W+){{0,2}}$"),
        "price_cue": re.compile(_alt(PRICE_CUES)),
        "over": re.compile(_alt(OVER_WORDS)),
        "instalment": re.compile(_alt(INSTALMENT_WORDS)),
        "available": re.compile(_alt(AVAILABLE_WORDS)),
        "unavailable": re.compile(_alt(UNAVAILABLE_WORDS)),
        "handoff": re.compile(rf"(?<![{_L}])(?:{'|'.join(HANDOFFS)})"),
        "offer": re.compile("|".join(f"(?:{p})" for p in DISCOUNT_OFFERS)),
        "mention": re.compile(rf"(?<![{_L}])[وبلفك]{{0,2}}(?:ال)?(?:{'|'.join(DISCOUNT_MENTIONS)})(?![{_L}])"),
        "sentence": re.compile(r"\n|[!?؟;؛]|\.(?!\d)"),
    }


def _count(m: re.Match) -> int:
    raw = m.groupdict().get("n") or m.groupdict().get("n2")
    if raw:
        return int(_number(raw)[0])
    return _NUMBERS.get(m.groupdict().get("w") or "", 2)   # dual words: 2


def _price(m: re.Match, work: str) -> list[_Figure]:
    """An amount with a currency, a multiplier or a fraction, or a large number written as one."""
    g, p = m.groupdict(), _patterns()
    currency = CURRENCIES.get(normalize(g["cur1"] or g["cur2"] or ""), ())
    mult_word = normalize(g["mult"] or "")
    scale = 1_000_000 if g["alone"] or mult_word in {normalize(w) for w in MILLION_WORDS} else 1000 if mult_word else 1
    frac = Decimal(str(_lookup(FRACTIONS, g["frac"]))) if g["frac"] and scale > 1 else Decimal(0)
    if g["alone"]:
        base = Decimal(str(_lookup(BEFORE_ALONE, g["pre"])) if g["pre"] else _lookup(ALONE, g["alone"]))
        tol = Decimal("0.125") if frac or g["pre"] else Decimal("0.5")
    elif g["w"]:
        if scale == 1:
            return []
        base, tol = Decimal(_NUMBERS[g["w"]]), Decimal("0.125") if frac else Decimal("0.5")
    else:
        if not g["cur1"] and re.match(r"[a-z]", work[m.start("n") - 1: m.start("n")] or " "):
            return []                                    # a digit inside an Arabizi word: "sab3a"
        base, decimals = _number(g["n"], decimal_point=scale == 1_000_000)
        tol = Decimal("0.125") if frac else _half_unit(decimals)
        if mult_word == "m" and (base >= 100 or re.match(r"\s*(?:from|away|walk|to|من)", work[m.end():])):
            return []                                    # "500m from the beach": metres
        if scale == 1 and (base < 100 or base < 1000 and p["range_next"].match(work, m.end())):
            return []                                    # "le 3 ayam"; "EGP 5 to 7 million" is read with the 7
        grouped = bool(re.search(r"[., ]\d{3}$", g["n"])) and base >= 1000
        if scale == 1 and not currency and not (grouped or base >= 10000 or p["monthly"].match(work, m.end())):
            return []
        if scale == 1 and not currency and not grouped and 1900 <= base <= 2100:
            return []
    value = (base + frac) * scale
    if g["k"] and scale == 1_000_000:                    # "٤ مليون و ٩٥٠ ألف"
        value, tol = value + int(g["k"]) * 1000, Decimal("0.0005")
    figures = [_Figure("price", value, m.span(), tol * scale, currency)]
    lo = p["range"].search(work, max(0, m.start() - 25), m.start()) if g["n"] and scale > 1 else None
    if lo:                                               # "5 to 7 million": the 5 is 5 million too
        lo_value, decimals = _number(lo.group("lo"), decimal_point=scale == 1_000_000)
        lo_tol = _half_unit(decimals) * scale
        figures.append(_Figure("price", lo_value * scale, (lo.start(), m.end()), lo_tol, currency))
    return figures


def _date(m: re.Match, work: str) -> list[_Figure]:
    """A year, a month and year or a quarter; "before"/"after" make it a bound. Bare years only 2020-2059."""
    year, p = int(m.group("year")), _patterns()
    month = _MONTHS.get(m.group("month") or "")
    quarter = int(m.group("q") or 0)
    months = (month,) if month else tuple(range(3 * quarter - 2, 3 * quarter + 1)) if quarter else ()
    if not months and not 2020 <= year <= 2059:
        return []
    before = work[max(0, m.start() - 25): m.start()]
    bound = "<=" if p["before"].search(before) else ">=" if p["after"].search(before) else ""
    return [_Figure("date", (year, months, bound), m.span())]


def _years(m: re.Match, work: str) -> list[_Figure]:
    """Instalment years: "over 8 years", "على ٨ سنين", or N years in a sentence about payment."""
    p, pre = _patterns(), normalize(m.group("pre") or "").strip()
    if pre and not p["over"].fullmatch(pre):
        return []
    sentence = work[slice(*_bounds(work, m.start()))]
    if not pre and not p["instalment"].search(sentence):
        return []
    start = m.start("n") if m.group("n") else m.start("w")
    return [_Figure("years", _count(m), (start if not pre else m.start(), m.end()))]


def _bounds(text: str, pos: int) -> tuple[int, int]:
    ends = [e.end() for e in _patterns()["sentence"].finditer(text)]
    i = bisect_right(ends, pos)
    return (ends[i - 1] if i else 0), (ends[i] if i < len(ends) else len(text))


def _read(folded: str, references: tuple[str, ...] = ()) -> list[_Figure]:
    """Every figure in folded text, one kind at a time; each figure's span is blanked for the next kinds."""
    p = _patterns()
    refs = re.compile("|".join([rf"(?<![a-z0-9-]){re.escape(r)}(?![a-z0-9-])" for r in references] +
                               [p["reference"].pattern]))
    readers = (
        (refs, lambda m, w: [_Figure("reference", m.group(0), m.span())]),
        (p["noise"], lambda m, w: [_Figure("noise", None, m.span())]),
        (p["size"], lambda m, w: [_Figure("size", _number(m.group("n"))[0], m.span(),
                                          max(_half_unit(_number(m.group("n"))[1]), Decimal("0.5")))]),
        (p["bedrooms"], lambda m, w: [_Figure("bedrooms", _count(m), m.span())]),
        (p["bathrooms"], lambda m, w: [_Figure("bathrooms", _count(m), m.span())]),
        (p["percent"], lambda m, w: [_Figure("percent", _number(m.group("n") or m.group("n2"))[0], m.span())]),
        (p["years"], _years),
        (p["ready"], lambda m, w: [] if p["negation"].search(w, max(0, m.start() - 20), m.start())
         else [_Figure("ready", None, m.span())]),
        (p["date"], _date),
        (p["price"], _price),
    )
    work, figures = folded, []
    for pattern, reader in readers:
        found = [f for m in pattern.finditer(work) if m.group(0).strip() for f in reader(m, work)]
        for f in found:
            work = work[:f.span[0]] + " " * (f.span[1] - f.span[0]) + work[f.span[1]:]
        figures += [f for f in found if f.kind != "noise"]
    return sorted(figures, key=lambda f: f.span)


# --- checking -----------------------------------------------------------------------------------------

_WHAT = {"price": "the price", "size": "the size", "bedrooms": "the bedroom count", "bathrooms": "the bathroom count",
         "percent": "in the payment plan", "years": "in the payment plan", "date": "the delivery date",
         "reference": "the reference"}
_CODE = {"price": "unknown_price", "size": "unknown_size", "bedrooms": "unknown_bedrooms",
         "bathrooms": "unknown_bedrooms", "percent": "unknown_payment_term", "years": "unknown_payment_term",
         "date": "unknown_date", "ready": "unknown_date", "reference": "unknown_reference"}


def _dec(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _facts(kind: str, p: dict) -> list:
    """What a listing says for one kind of figure."""
    plan = p.get("payment_plan") or ""
    price = (_dec(p["price"]), p.get("currency"))
    return {
        "price": [price] + [(price[0] * Decimal(x) / 100, price[1]) for x in re.findall(r"(\d+(?:\.\d+)?)\s*%", plan)]
        + ([(price[0] / _dec(p["area_sqm"]), price[1])] if p.get("area_sqm") else []),   # down payment, per m²
        "size": [_dec(p["area_sqm"])] if p.get("area_sqm") is not None else [],
        "bedrooms": [p.get("bedrooms")], "bathrooms": [p.get("bathrooms")],
        "percent": [Decimal(x) for x in re.findall(r"(\d+(?:\.\d+)?)\s*%", plan)],
        "years": [int(x) for x in re.findall(r"(\d+)\s*-?\s*years?", plan, re.IGNORECASE)],
        "date": [p.get("delivery_date")], "ready": [p.get("delivery_date")],
        "reference": [normalize(p["reference"])],
    }[kind]


def _same(f: _Figure, fact, tol: Decimal = Decimal(0)) -> bool:
    """Whether a figure states `fact` (a listing's, or another figure's value)."""
    if f.kind == "price":
        amount, currency = fact
        return abs(amount - f.value) <= max(f.tol, tol) and (not f.currency or not currency or currency in f.currency)
    if f.kind == "date":
        if fact is None:
            return False
        if not hasattr(fact, "year"):
            return fact == f.value
        year, months, bound = f.value
        key, lo, hi = (fact.year, fact.month), (year, min(months or (1,))), (year, max(months or (12,)))
        return key <= hi if bound == "<=" else key >= lo if bound == ">=" else lo <= key <= hi
    if f.kind == "ready":
        return fact is None
    if f.kind in ("size", "percent"):
        return fact is not None and abs(Decimal(fact) - f.value) <= max(f.tol, tol)
    return fact == f.value


def _summary(kind: str, f: _Figure, listings: list[dict]) -> str:
    """The nearest few listings' own figures, for the detail sentence."""
    if not listings:
        return "no listings were retrieved"
    if kind == "reference":
        return "retrieved: " + ", ".join(p["reference"] for p in listings[:6])
    show = {"price": lambda p: format_price(p["price"], p["currency"], lang="en",
                                            listing_type=p.get("listing_type", "sale")),
            "size": lambda p: f"{_dec(p['area_sqm']).normalize():f} m²" if p.get("area_sqm") else "no size",
            "bedrooms": lambda p: f"{p.get('bedrooms')} bedrooms",
            "bathrooms": lambda p: f"{p.get('bathrooms')} bathrooms",
            "date": lambda p: delivery_text(p.get("delivery_date"), lang="en"),
            "ready": lambda p: delivery_text(p.get("delivery_date"), lang="en")}
    pick = show.get(kind, lambda p: p.get("payment_plan") or "no payment plan")
    key = {"price": lambda p: abs(_dec(p["price"]) - f.value),
           "size": lambda p: abs(_dec(p.get("area_sqm") or 0) - f.value)}.get(kind, lambda p: 0)
    return "; ".join(f"{p['reference']}: {pick(p)}" for p in sorted(listings, key=key)[:3])


class _Draft:
    """The folded draft, its sentences, and where the retrieved listings are named in it."""

    def __init__(self, draft: str, listings: list[dict]):
        self.draft, (self.folded, self.origin) = draft, _fold(draft)
        names = [normalize(n) for p in listings for n in (p.get("reference"), p.get("project_name")) if n]
        self.names = re.compile("|".join([rf"(?<![{_L}0-9-]){re.escape(n)}(?![{_L}0-9-])" for n in names] +
                                         [_patterns()["reference"].pattern]))

    def found(self, start: int, end: int) -> str:
        return self.draft[self.origin[start]: self.origin[end - 1] + 1].strip()

    def sentence(self, pos: int) -> str:
        start, end = _bounds(self.folded, pos)
        return self.folded[start:end]

    def echoes(self, f: _Figure, said: list[_Figure]) -> bool:
        """The customer said it, and the draft does not attach it to a listing (unless as their budget)."""
        if not any(c.kind == f.kind and _same(f, c.value if c.kind != "price" else (c.value, ()), c.tol)
                   for c in said):
            return False
        p, start = _patterns(), _bounds(self.folded, f.span[0])[0]
        sentence = self.sentence(f.span[0])
        if f.kind == "reference":                        # "HP-777 is not one of ours", never "HP-777 is available"
            return not (p["available"].search(sentence) and not p["unavailable"].search(sentence))
        return (bool(p["echo"].search(self.folded, start, f.span[0]))
                or not (self.names.search(sentence) or (f.kind == "price" and p["price_cue"].search(sentence))))


def _figure_misses(d: _Draft, listings: list[dict], said: list[_Figure]) -> list[Miss]:
    """Each figure of the draft against the listings, then against what the customer said."""
    misses = []
    for f in _read(d.folded, tuple(normalize(p["reference"]) for p in listings)):
        if any(_same(f, fact) for p in listings for fact in _facts(f.kind, p)) or d.echoes(f, said):
            continue
        found, summary = d.found(*f.span), _summary(f.kind, f, listings)
        detail = (f"{found}: no listing retrieved here is ready to move in ({summary})" if f.kind == "ready" else
                  f"{found} is not {_WHAT[f.kind]} of any listing retrieved here ({summary})")
        misses.append(Miss(_CODE[f.kind], found, detail))
    return misses


def _status_misses(d: _Draft, listings: list[dict]) -> list[Miss]:
    """A sold or reserved listing, named by reference or project name, in a sentence that calls it available."""
    p, misses = _patterns(), []
    for row in listings:
        if row.get("status") not in ("sold", "reserved"):
            continue
        names = [row["reference"]]
        if row.get("project_name") and not any(q.get("project_name") == row["project_name"]
                                               and q.get("status", "available") == "available" for q in listings):
            names.append(row["project_name"])
        spans: dict[tuple[int, int], list[int]] = {}           # sentence -> where the listing is named in it
        for name in names:
            for m in re.finditer(rf"(?<![{_L}0-9-]){re.escape(normalize(name))}(?![{_L}0-9-])", d.folded):
                spans.setdefault(_bounds(d.folded, m.start()), []).extend(m.span())
        for (start, end), at in spans.items():
            claim = p["available"].search(d.folded, start, end)
            if claim and not p["unavailable"].search(d.folded, start, end):
                found = d.found(min(*at, claim.start()), max(*at, claim.end()))
                misses.append(Miss("unavailable_listing", found, f"{row['reference']} ({row.get('project_name')}) "
                                   f"is {row['status']}, but the draft presents it as available"))
    return misses


def _discount_misses(d: _Draft) -> list[Miss]:
    """Offers of a discount or another price; a mention handed to the agent, or negated, is not an offer."""
    p, misses, taken = _patterns(), [], set()
    for kind in ("offer", "mention"):
        for m in p[kind].finditer(d.folded):
            start = _bounds(d.folded, m.start())[0]
            if start in taken or p["negation"].search(d.folded, max(start, m.start() - 30), m.start()):
                continue                                 # one miss a sentence; "I can't offer a discount"
            if kind == "mention" and p["handoff"].search(d.sentence(m.start())):
                continue
            taken.add(start)
            misses.append(Miss("discount", d.found(*m.span()), f'"{d.found(*m.span())}" offers a discount or a '
                               "different price; only the agent may discuss prices"))
    return misses


def check_draft(draft: str, *, listings: list[dict], customer_text: str = "") -> GuardResult:
    """Whether every figure of a drafted reply is grounded in the retrieved listings (or the customer's words)."""
    d = _Draft(draft, listings)
    said = _read(_fold(customer_text)[0])
    misses = _figure_misses(d, listings, said) + _status_misses(d, listings) + _discount_misses(d)
    unique = tuple(dict.fromkeys(misses))
    return GuardResult(not unique, unique)
