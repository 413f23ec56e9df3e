"""What a customer is looking for, read deterministically from English, Egyptian Arabic and Arabizi.

`extract(text, aliases=…)` returns the Criteria one message states; `merge(old, new)` is how
preferences accumulate over a conversation (newer statements replace older ones, amenities add up).
All matching runs on `text.normalize()`d text, so أ/إ/آ, ى/ي, ة/ه, diacritics, tatweel and
Arabic-Indic digits never matter. Vocabulary lives in the tables below; each entry is normalised
when the patterns are built. A type, an area or a room count that no exact word states is looked
for again with typos tolerated (`lib/spelling.py`): "appartment", "vila", "madi", "thre bedrooms".
A budget in the millions with no word for renting means buying.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import Iterable

from execution.lib import spelling
from execution.lib.property_store import Alias
from execution.lib.text import normalize

# --- vocabulary -------------------------------------------------------------------------------------

PROPERTY_TYPE_WORDS = {
    "twin house": ["twin house", "twin houses", "twinhouse", "twin villa", "توين هاوس", "توين"],
    "townhouse": ["townhouse", "townhouses", "town house", "town houses", "تاون هاوس", "تاون", "taon house"],
    "penthouse": ["penthouse", "pent house", "بنتهاوس", "بنت هاوس"],
    "apartment": ["apartment", "apartments", "apt", "flat", "flats", "شقة", "شقه", "شقق", "شقتين", "sha2a",
                  "sha2aa", "sha22a", "sha2et", "sho2a2", "sha2", "shaqa", "sha2a2"],
    "villa": ["villa", "villas", "فيلا", "فيلل", "فلل", "fella", "fila", "villah"],
    "chalet": ["chalet", "chalets", "شاليه", "شاليهات", "shalih", "shaleeh", "shaleh", "chaleh"],
    "duplex": ["duplex", "duplexes", "دوبلكس", "دوبليكس", "doplex", "dublex", "dupleks"],
    "studio": ["studio", "studios", "ستوديو", "استوديو", "استديو", "estudio", "stodio"],
}
RENT_WORDS = ["rent", "rental", "renting", "for rent", "to rent", "lease", "leasing", "monthly", "a month",
              "per month", "/month", "/mo", "ايجار", "للايجار", "الايجار", "اجار", "مؤجر", "شهري", "شهريا",
              "في الشهر", "بالشهر", "egar", "2egar", "eigar", "igar", "ejar", "iigar", "l2egar", "el egar",
              "fel shahr", "fi el shahr", "shahreyan", "bel shahr", "kol shahr"]
# Not the payment words ("تقسيط", "ta2seet", "installments"): asking how a listing is paid for is a
# question about it, and read as "for sale" it moved a renter onto sale listings.
SALE_WORDS = ["buy", "buying", "purchase", "for sale", "to own", "ownership", "resale", "بيع", "للبيع",
              "شراء", "اشتري", "اشترى", "تمليك", "كاش", "shera2", "ashtery", "ashtry",
              "ashteri", "tamleek", "tamlik", "lel be3", "be3"]
BEDROOM_WORDS = ["bedrooms", "bedroom", "beds", "bed", "br", "bdr", "bdrm", "bhk", "rooms", "room", "غرف نوم",
                 "غرفه نوم", "غرف", "غرفه", "اوض", "اوضه", "owad", "ouad", "2owad", "oda", "odad", "ghoraf",
                 "ghorf", "ghorfa", "rooms nom"]
TWO_BEDROOM_WORDS = ["غرفتين", "اوضتين", "odteen", "odten", "2odteen", "ghorftein"]
AMENITY_WORDS = {
    "pool": ["swimming pool", "pool", "pools", "حمام سباحه", "حمام سباحة", "بيسين", "بسين", "pisine", "pisin",
             "besine", "7amam seba7a"],
    "gym": ["gym", "fitness", "جيم", "جم", "صاله رياضيه", "جيمانيزيوم"],
    "garden": ["garden", "gardens", "حديقه", "حديقة", "جنينه", "جنينة", "genena", "gneina", "garden view"],
    "sea view": ["sea view", "seaview", "view on the sea", "on the sea", "فيو بحر", "على البحر", "ع البحر",
                 "view bahr", "3al ba7r", "ba7r"],
    "security": ["security", "guarded", "gated", "امن", "حراسه", "كمبوند مؤمن", "amn", "security 24"],
    "parking": ["parking", "garage", "جراج", "باركينج", "جراش", "garag", "garaj"],
    "clubhouse": ["clubhouse", "club house", "club", "كلوب هاوس", "نادي"],
    "kids": ["kids area", "kids club", "playground", "العاب اطفال", "منطقه العاب"],
    "school": ["school", "schools", "مدرسه", "مدارس", "madrasa"],
    "mosque": ["mosque", "مسجد", "جامع", "masged", "game3"],
    "smart home": ["smart home", "سمارت هوم"],
    "roof": ["roof", "roof terrace", "روف", "rof"],
    "jogging": ["jogging", "running track", "jogging track", "تراك جري", "ممشى"],
}
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "واحد": 1, "واحده": 1, "اتنين": 2, "اثنين": 2, "تلات": 3, "تلاته": 3, "ثلاث": 3, "ثلاثه": 3, "اربع": 4,
    "اربعه": 4, "خمس": 5, "خمسه": 5, "ست": 6, "سته": 6, "سبع": 7, "سبعه": 7,
    "wa7ed": 1, "wahed": 1, "etnen": 2, "etneen": 2, "itnen": 2, "talata": 3, "tlata": 3, "talat": 3,
    "tlat": 3, "arba3a": 4, "arba3": 4, "arbaa": 4, "khamsa": 5, "5amsa": 5, "setta": 6, "sitta": 6,
}
MILLION_WORDS = ["million", "millions", "mil", "mln", "mn", "m", "milion", "millio", "malyon", "malayeen",
                 "mlyon", "melyon", "مليون", "ملايين", "مليونين"]
THOUSAND_WORDS = ["thousand", "k", "الف", "آلاف", "الاف", "alf", "alaf", "2alf"]
UPPER_WORDS = ["under", "below", "less than", "max", "maximum", "up to", "upto", "not more than", "no more than",
               "within", "budget of", "budget is", "budget", "at most", "اقل من", "تحت", "لحد", "ميزانيتي",
               "ميزانيه", "بحد اقصى", "مش اكتر من", "ma2smo", "a2al men", "a2al mn", "ta7t", "le7ad", "lehad",
               "mizanya", "mizaneyti", "max"]
AROUND_WORDS = ["around", "about", "approximately", "approx", "roughly", "~", "في حدود", "حدود", "حوالي",
                "تقريبا", "fe 7odod", "f 7odod", "7odod", "hodod", "7awaly", "7awali", "hawaly", "ta2reban"]
LOWER_WORDS = ["above", "over", "more than", "at least", "minimum", "min", "starting from", "from", "اكتر من",
               "اكثر من", "فوق", "على الاقل", "من", "aktar men", "a2al 7aga", "3ala el a2al", "fo2"]
MIN_BEDROOM_AFTER = ["+", "or more", "and above", "plus", "او اكتر", "او اكثر", "وطالع", "aw aktar", "w tale3"]
MIN_BEDROOM_BEFORE = ["at least", "minimum", "min", "على الاقل", "3ala el a2al", "mesh a2al men", "مش اقل من"]
SIZE_WORDS = ["m2", "m²", "sqm", "sq m", "sq.m", "square meters", "square metres", "meters", "metres", "meter",
              "متر مربع", "متر", "مترمربع", "م2", "م", "metr", "mitr", "meter morab3"]
INCLUDE_UNAVAILABLE_WORDS = ["including sold", "include sold", "including reserved", "include reserved",
                             "even sold", "even reserved", "sold ones", "reserved ones", "حتى المباع", "المحجوز"]
ARABIZI_MARKERS = ["3ayez", "fi", "hal", "fih", "feeh", "3ndak", "lw", "ahlan", "salam", "izay", "3ala", "beta3", "di", "de", "da", "3ayz", "3awez", "ayez", "3andak", "3andek", "3and", "ana", "mesh", "msh", "fe", "fel",
                   "kam", "bkam", "be kam", "ezay", "law", "momken", "7aga", "el", "3shan", "ya", "eh", "keda",
                   "egar", "sha2a", "owad", "tamleek", "enta", "enti", "tanya", "tany", "hya", "howa", "feen"]

# Words that are Egyptian Arabic written in Latin letters and never English: one is enough.
ARABIZI_STRONG = {
    "3ayez", "3ayza", "3awez", "3awza", "ahlan", "ezayak", "ezayek", "ezay", "izay", "tamam", "shokran", "mashy",
    "mashi", "aywa", "aiwa", "keda", "kda", "bokra", "bukra", "feen", "fein", "yalla", "inshallah",
    "insha2allah", "habibi", "7abibi", "kteer", "ktir", "awy", "2awy", "tayeb", "tab3an", "delwa2ty", "dlw2ty",
    "lessa", "leeh", "emta", "ma3lesh", "wallahi", "walla", "ya3ni", "bgad", "begad", "sha2a", "shaqa", "owda",
    "se3r", "s3r", "mota7", "mawgood", "mawgoda", "hena", "henak", "e7na", "ento", "enty", "enta", "momken",
    "msh", "beta3", "beta3et", "3ashan", "3shan", "3andak", "3andek", "3andko", "3ndak", "ana2", "sabah", "masa2",
    "elhamdulillah", "alhamdulillah", "el7amdulillah", "ezzay", "bkam", "bekam", "mafeesh", "mafish", "fahem",
    "fahma", "7elw", "7elwa", "helw", "helwa", "sa7", "ma3ak", "ma3aki", "kalemni", "asoufha", "ashoofha",
    "ashofha", "shofha", "3ala", "3and", "egar", "tamleek", "owad", "fel", "lel", "3al", "sowar", "sewar",
    "shwaya", "shewaya", "akbar", "asghar", "aghla", "mefarsha", "mfarsha", "nezam", "sadad", "tafaseel", "wehda",
    "elly", "elli", "salama", "bardo", "kaman", "ekhtyarat", "gedida", "gdida"}

FILLER = ("the and for with want need looking look find show have any please hello thanks thank you there what "
          "which near area عايز عاوز محتاج ابحث عن فيه في من على لو سمحت عندك عندكم حاجه ممكن ana fe el 3andak "
          "momken")
STRUCTURED = (*(w for words in PROPERTY_TYPE_WORDS.values() for w in words), *RENT_WORDS, *SALE_WORDS,
              *BEDROOM_WORDS, *(w for words in AMENITY_WORDS.values() for w in words), *MILLION_WORDS,
              *THOUSAND_WORDS, *UPPER_WORDS, *AROUND_WORDS, *LOWER_WORDS, *SIZE_WORDS, *ARABIZI_MARKERS)

# Words the typo tolerance never reads as something else: the vocabulary's own words and the filler.
KNOWN_WORDS = frozenset(w for phrase in (*FILLER.split(), *STRUCTURED, *NUMBER_WORDS, *BEDROOM_WORDS)
                        for w in normalize(phrase).split())
SALE_FROM = 1_000_000          # a budget this high is for buying, whatever the currency

_ARABIC = re.compile(r"[\u0600-\u06ff]")
_LATIN = re.compile(r"[a-z]")
_UNIT_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:k|m|mn|br|bd|bdr|bed|beds|bedrooms?|sqm|m2|st|nd|rd|th|pm|am)?")
_REFERENCE = re.compile(r"(?<![\w-])([a-z]{1,5}-\d{1,8})(?![\w-])")
_NUMBER = r"(\d+(?:[.,]\d+)*)"


# --- the result -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Criteria:
    property_types: tuple[str, ...] = ()
    listing_type: str | None = None
    areas: tuple[str, ...] = ()                  # location_areas.slug
    bedrooms_min: int | None = None
    bedrooms_max: int | None = None
    price_min: int | None = None
    price_max: int | None = None
    size_min: int | None = None
    size_max: int | None = None
    amenities: tuple[str, ...] = ()
    include_unavailable: bool = False
    reference: str | None = None
    language: str | None = field(default=None, compare=False)
    evidence: tuple[str, ...] = field(default=(), compare=False)   # what in the text said so, for --text and logs

    def is_empty(self) -> bool:
        return self == Criteria()

    def missing(self) -> tuple[str, ...]:
        """What is still unknown among the four things an agent needs to shortlist."""
        out = []
        if not self.areas:
            out.append("area")
        if self.price_max is None and self.price_min is None:
            out.append("budget")
        if self.bedrooms_min is None and self.bedrooms_max is None and "studio" not in self.property_types:
            out.append("bedrooms")
        if self.listing_type is None:
            out.append("listing_type")
        return tuple(out)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("evidence")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items() if v not in (None, (), False)}

    @classmethod
    def from_json(cls, data: dict | None) -> "Criteria":
        data = data or {}
        known = {f for f in cls.__dataclass_fields__ if f != "evidence"}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        return cls(**values)


def merge(old: Criteria, new: Criteria) -> Criteria:
    """Preferences over turns: what the newer message states replaces the older; amenities add up."""
    out = old
    if new.property_types:
        out = replace(out, property_types=new.property_types)
    if new.listing_type:
        out = replace(out, listing_type=new.listing_type)
    if new.areas:
        out = replace(out, areas=new.areas)
    if new.bedrooms_min is not None or new.bedrooms_max is not None:
        out = replace(out, bedrooms_min=new.bedrooms_min, bedrooms_max=new.bedrooms_max)
    if new.price_min is not None or new.price_max is not None:
        out = replace(out, price_min=new.price_min, price_max=new.price_max)
    if new.size_min is not None or new.size_max is not None:
        out = replace(out, size_min=new.size_min, size_max=new.size_max)
    if new.amenities:
        out = replace(out, amenities=tuple(dict.fromkeys(old.amenities + new.amenities)))
    if new.include_unavailable:
        out = replace(out, include_unavailable=True)
    if new.reference:
        out = replace(out, reference=new.reference)
    return replace(out, language=new.language or old.language, evidence=new.evidence)


# --- patterns ---------------------------------------------------------------------------------------

def _alternation(words: Iterable[str]) -> str:
    forms = sorted({normalize(w) for w in words}, key=len, reverse=True)
    return "|".join(re.escape(f) for f in forms)


_PRE = r"(?<![^\W_])"        # start of a word
_POST = r"(?![^\W_])"        # end of a word
_CLITIC = r"(?:[وفبلك]{0,2}(?:ال)?)"  # Arabic prefixes glued to the word: و ف ب ل ك and the article


def _word(words: Iterable[str]) -> str:
    return rf"{_PRE}{_CLITIC}(?:{_alternation(words)}){_POST}"


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    num = rf"(?:(?P<n>\d+)|(?P<word>{_alternation(NUMBER_WORDS)}))"
    million, thousand = _alternation(MILLION_WORDS), _alternation(THOUSAND_WORDS)
    money = rf"(?P<amount>{_NUMBER})\s*(?:(?P<mult>{million}|{thousand}){_POST})?"
    return {
        "bedrooms": re.compile(
            rf"(?P<before>(?:{_alternation(MIN_BEDROOM_BEFORE)})\s*)?{_PRE}{num}\s*(?P<plus>\+)?\s*-?\s*"
            rf"(?:{_alternation(BEDROOM_WORDS)}){_POST}(?P<after>\s*(?:{_alternation(MIN_BEDROOM_AFTER)}))?"
        ),
        "bedrooms_two": re.compile(_word(TWO_BEDROOM_WORDS)),
        "size": re.compile(
            rf"(?P<bound>(?:{_alternation(UPPER_WORDS + LOWER_WORDS)})\s*)?{_PRE}(?P<size>{_NUMBER})\s*"
            rf"(?:{_alternation(SIZE_WORDS)})(?![^\W_\d²])"
        ),
        "range": re.compile(
            rf"(?:between|من|ما بين|بين|ben|bein|men|from)?\s*{_PRE}(?P<lo>{_NUMBER})\s*(?P<lomult>{million}|{thousand})?"
            rf"\s*(?:-|–|to|and|ل|الى|لحد|و|w|l|le|till)\s*(?P<hi>{_NUMBER})\s*(?P<himult>{million}|{thousand}){_POST}"
        ),
        "money": re.compile(rf"{_PRE}{money}"),
        "million_alone": re.compile(
            rf"{_PRE}(?P<half>نص\s+)?(?:مليون|مليونين|million|malyon)(?P<and_half>\s+(?:ونص|و نص|w nos|and a half))?{_POST}"
        ),
        "upper": re.compile(rf"(?:{_alternation(UPPER_WORDS)})\s*$"),
        "around": re.compile(rf"(?:{_alternation(AROUND_WORDS)})\s*$"),
        "lower": re.compile(rf"(?:{_alternation(LOWER_WORDS)})\s*$"),
        "monthly": re.compile(
            rf"^\s*(?:egp|le|جنيه|geneh|pounds?)?\s*(?:a month|per month|/month|/mo|monthly|في الشهر|بالشهر|شهريا|"
            rf"fel shahr|fi el shahr|shahreyan|kol shahr|pm){_POST}"
        ),
        "currency_after": re.compile(r"^\s*(?:egp|le|l\.e|جنيه|جنيها|ج\.م|geneh|gneh|pounds?|usd|\$)(?![^\W_])"),
        "rent": re.compile(_word(RENT_WORDS)),
        "sale": re.compile(_word(SALE_WORDS)),
        "unavailable": re.compile(_word(INCLUDE_UNAVAILABLE_WORDS)),
        **{f"type:{t}": re.compile(_word(words)) for t, words in PROPERTY_TYPE_WORDS.items()},
        **{f"amenity:{a}": re.compile(_word(words)) for a, words in AMENITY_WORDS.items()},
    }


def _to_number(raw: str) -> Decimal:
    raw = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", raw) else raw.replace(",", ".")
    return Decimal(raw)


_MILLION_FORMS = frozenset(normalize(w) for w in MILLION_WORDS)


def _multiplier(word: str | None) -> int:
    if not word:
        return 1
    if word in _MILLION_FORMS:
        return 1_000_000
    return 1_000


def detect_language(text: str) -> str:
    """'ar' when Arabic script dominates, 'arabizi' for Latin Egyptian Arabic, else 'en'."""
    folded = _REFERENCE.sub(" ", normalize(text))      # "NH-0033" is in no language
    arabic, latin = len(_ARABIC.findall(folded)), len(_LATIN.findall(folded))
    if arabic > latin:
        return "ar"
    if latin == 0:
        return "en"
    tokens = re.findall(r"[a-z0-9']+", folded)
    digit_words = [t for t in tokens if re.search(r"[a-z]", t) and re.search(r"[2357]", t)
                   and not _UNIT_TOKEN.fullmatch(t)]
    if digit_words or set(tokens) & ARABIZI_STRONG:
        return "arabizi"
    return "arabizi" if len(set(tokens) & set(ARABIZI_MARKERS)) >= 2 else "en"


def _blank(text: str, span: tuple[int, int]) -> str:
    return text[: span[0]] + " " * (span[1] - span[0]) + text[span[1]:]


def find_areas(folded: str, aliases: Iterable[Alias]) -> tuple[list[Alias], str]:
    """Areas named in normalised text (longest alias first) and the text with them blanked out."""
    found: list[Alias] = []
    for alias in aliases:
        forms = [alias.normalized]
        if alias.normalized.startswith("ال"):
            forms.append("لل" + alias.normalized[2:])   # ل + ال → لل: للتجمع
        for form in forms:
            # Not a date: "October 2027" is a month.
            pattern = rf"{_PRE}(?:[وفبك]{{0,2}}|[وفبك]?ل)?{re.escape(form)}{_POST}(?!\s*(?:19|20)\d\d)"
            match = re.search(pattern, folded)
            if match:
                if alias.slug not in {a.slug for a in found}:
                    found.append(alias)
                folded = _blank(folded, match.span())
    return found, folded


def extract(text: str, *, aliases: Iterable[Alias] = (), tolerance_pct: int = 10) -> Criteria:
    """The criteria one customer message states, with the words that stated each one."""
    p = _patterns()
    folded = normalize(text)
    folded = re.sub(r"(?<=\d)٫(?=\d)", ".", folded)
    evidence: list[str] = []
    values: dict = {"language": detect_language(text)}

    areas, rest = find_areas(folded, aliases)
    if not areas:
        areas, rest = _misspelt_areas(rest, aliases)
    if areas:
        values["areas"] = tuple(a.slug for a in areas)
        evidence += [f"area {a.slug}" for a in areas]

    ref = _REFERENCE.search(rest)
    if ref:
        values["reference"] = ref.group(1).upper()
        evidence.append(f"reference {values['reference']}")
        rest = _blank(rest, ref.span())

    if p["unavailable"].search(rest):
        values["include_unavailable"] = True
        evidence.append("include reserved/sold")

    # Sizes before money and bedrooms: "150 m2" is neither a price nor a room count.
    for m in p["size"].finditer(rest):
        size = int(_to_number(m.group("size")))
        bound = normalize(m.group("bound") or "").strip()
        if bound and re.fullmatch(p["upper"].pattern, bound):
            values["size_max"] = size
        elif bound:
            values["size_min"] = size
        else:
            values["size_min"], values["size_max"] = int(size * 0.85), int(size * 1.15)
        evidence.append(f"size {m.group(0).strip()!r}")
        rest = _blank(rest, m.span())

    beds = p["bedrooms"].search(rest)
    if beds:
        count = NUMBER_WORDS.get(beds.group("word")) if beds.group("word") else int(beds.group("n"))
        if count is not None and 0 <= count <= 20:
            at_least = bool(beds.group("before") or beds.group("plus") or beds.group("after"))
            values["bedrooms_min"] = count
            values["bedrooms_max"] = None if at_least else count
            evidence.append(f"bedrooms {beds.group(0).strip()!r}")
        rest = _blank(rest, beds.span())
    elif (two := p["bedrooms_two"].search(rest)):
        values["bedrooms_min"] = values["bedrooms_max"] = 2
        evidence.append(f"bedrooms {two.group(0).strip()!r}")
        rest = _blank(rest, two.span())
    elif (misspelt := _misspelt_bedrooms(rest)):
        count, span = misspelt
        values["bedrooms_min"] = values["bedrooms_max"] = count
        evidence.append(f"bedrooms {rest[span[0]:span[1]].strip()!r} (misspelt)")
        rest = _blank(rest, span)

    rest = _extract_budget(rest, values, evidence, Decimal(100 + tolerance_pct) / 100)

    types = [t for t in PROPERTY_TYPE_WORDS if p[f"type:{t}"].search(rest)]
    if types:
        evidence.append("type " + ", ".join(types))
    elif (types := _misspelt_types(rest)):
        evidence.append("type " + ", ".join(types) + " (misspelt)")
    if types:
        values["property_types"] = tuple(types)
    rent, sale = p["rent"].search(rest), p["sale"].search(rest)
    if values.get("listing_type") is None and (rent or sale) and not (rent and sale):
        values["listing_type"] = "rent" if rent else "sale"
        evidence.append(f"{values['listing_type']} {(rent or sale).group(0).strip()!r}")
    elif values.get("listing_type") is None and not rent and max(values.get("price_max") or 0,
                                                                 values.get("price_min") or 0) >= SALE_FROM:
        values["listing_type"] = "sale"
        evidence.append("sale (a budget in the millions)")
    amenities = [a for a in AMENITY_WORDS if p[f"amenity:{a}"].search(rest)]
    if amenities:
        values["amenities"] = tuple(amenities)
        evidence.append("amenities " + ", ".join(amenities))
    return Criteria(**values, evidence=tuple(evidence))


def _extract_budget(rest: str, values: dict, evidence: list, tolerance: Decimal) -> str:
    p = _patterns()
    rng = p["range"].search(rest)
    if rng:
        hi_mult = _multiplier(rng.group("himult"))
        lo_mult = _multiplier(rng.group("lomult")) if rng.group("lomult") else hi_mult
        lo, hi = _to_number(rng.group("lo")) * lo_mult, _to_number(rng.group("hi")) * hi_mult
        if lo <= hi:
            values["price_min"], values["price_max"] = int(lo), int(hi)
            evidence.append(f"budget range {rng.group(0).strip()!r}")
            _monthly(rest[rng.end():], values, evidence)
            return _blank(rest, rng.span())
    for m in p["money"].finditer(rest):
        amount = _to_number(m.group("amount")) * _multiplier(m.group("mult"))
        before = rest[max(0, m.start() - 30): m.start()]
        after = rest[m.end(): m.end() + 20]
        # A bare number is money only when the words around it say so: not a phone number or a year.
        explicit = bool(m.group("mult")) or (amount >= 1000 and (
            p["upper"].search(before) or p["around"].search(before) or p["lower"].search(before)
            or p["currency_after"].search(after) or p["monthly"].search(after) or "," in m.group("amount")))
        if not explicit or (not m.group("mult") and 1900 <= amount <= 2100) or amount >= 10**12:
            continue
        _set_budget(amount, before, values, evidence, m.group(0).strip(), tolerance)
        _monthly(rest[m.end():], values, evidence)
        return _blank(rest, m.span())
    alone = p["million_alone"].search(rest)
    if alone:
        amount = Decimal(2_000_000 if "مليونين" in alone.group(0) else 1_000_000)
        if alone.group("half"):
            amount /= 2
        if alone.group("and_half"):
            amount += 500_000
        _set_budget(amount, rest[max(0, alone.start() - 30): alone.start()], values, evidence, alone.group(0).strip(),
                    tolerance)
        return _blank(rest, alone.span())
    return rest


def _set_budget(amount: Decimal, before: str, values: dict, evidence: list, said: str, tolerance: Decimal) -> None:
    p = _patterns()
    if p["upper"].search(before) and not p["around"].search(before):
        values["price_max"] = int(amount)
        evidence.append(f"budget at most {said!r}")
    elif p["lower"].search(before) and not p["around"].search(before):
        values["price_min"] = int(amount)
        evidence.append(f"budget at least {said!r}")
    else:
        # "8 million", "around 8M", "في حدود ٨ مليون": up to the tolerance above what was said.
        values["price_max"] = int(amount * tolerance)
        evidence.append(f"budget about {said!r}")


def _monthly(after: str, values: dict, evidence: list) -> None:
    if _patterns()["monthly"].search(after):
        values["listing_type"] = "rent"
        evidence.append("rent (a monthly amount)")


# --- typos --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")


def _forms(words: Iterable[str]) -> list[str]:
    return [normalize(w) for w in words]


@lru_cache(maxsize=1)
def _type_forms() -> dict[str, str]:
    return {f: t for t, words in PROPERTY_TYPE_WORDS.items() for f in _forms(words)}


@lru_cache(maxsize=1)
def _number_forms() -> dict[str, int]:
    return {normalize(w): n for w, n in NUMBER_WORDS.items()}


@lru_cache(maxsize=1)
def _bedroom_forms() -> dict[str, bool]:
    return {f: True for f in _forms(BEDROOM_WORDS) if " " not in f}


def _windows(text: str, size: int):
    """Each run of `size` consecutive words: (the words joined by one space, its span)."""
    tokens = list(_TOKEN.finditer(text))
    for i in range(len(tokens) - size + 1):
        run = tokens[i: i + size]
        if all(t.group(0) in KNOWN_WORDS or t.group(0) in spelling.PROTECTED for t in run):
            continue
        yield " ".join(t.group(0) for t in run), (run[0].start(), run[-1].end())


def _misspelt_types(rest: str) -> list[str]:
    forms = _type_forms()
    found = []
    for size in (2, 1):
        sized = {f: t for f, t in forms.items() if f.count(" ") == size - 1}
        for words, _ in _windows(rest, size):
            kind = spelling.nearest(words, sized, known=KNOWN_WORDS)
            if kind and kind not in found:
                found.append(kind)
    return found


def _misspelt_areas(folded: str, aliases: Iterable[Alias]) -> tuple[list[Alias], str]:
    by_size: dict[int, dict[str, Alias]] = {}
    for alias in aliases:
        by_size.setdefault(alias.normalized.count(" ") + 1, {})[alias.normalized] = alias
    found: list[Alias] = []
    for size in sorted(by_size, reverse=True):
        forms = {f: a.slug for f, a in by_size[size].items()}
        for words, span in _windows(folded, size):
            # A glued preposition before the article: "بالتجمح" is "التجمح".
            for variant in dict.fromkeys((words, re.sub(r"^[وفبك]{0,2}ل?(?=ال)", "", words))):
                slug = spelling.nearest(variant, forms, known=KNOWN_WORDS)
                if slug and slug not in {a.slug for a in found}:
                    found.append(next(a for a in by_size[size].values() if a.slug == slug))
                    folded = _blank(folded, span)
                    break
    return found, folded


def _misspelt_bedrooms(rest: str) -> tuple[int, tuple[int, int]] | None:
    """A room count with the number word or the room word misspelt: "thre bedrooms", "3 bedroms"."""
    tokens = list(_TOKEN.finditer(rest))
    numbers, rooms = _number_forms(), _bedroom_forms()
    for first, second in zip(tokens, tokens[1:]):
        word, noun = first.group(0), second.group(0)
        count = int(word) if word.isdigit() else numbers.get(word)
        count = count if count is not None else spelling.nearest(word, numbers, known=KNOWN_WORDS)
        if count is None or not 0 <= count <= 20:
            continue
        if noun in rooms or spelling.nearest(noun, rooms, known=KNOWN_WORDS):
            return count, (first.start(), second.end())
    return None
