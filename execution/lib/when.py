"""When a customer wants a viewing, read from English, Egyptian Arabic and Arabizi.

`read_when(text, now=...)` returns a `When`: a moment ("exact"), a day, a part of a day, a span of
days ("range"), a time with no day ("time") or nothing ("none"). `now` is aware and in the agent's
time zone; every datetime returned is in that zone. Matching runs on `text.normalize()`d text, so
أ/إ/آ, ى/ي, ة/ه, diacritics and Arabic-Indic or Persian digits never matter.

Readings a caller must know:
- Windows: a day or a range is whole days (midnight to midnight, end exclusive); a part of the day is
  its window in DAY_PARTS. Night words ("tonight", بالليل, bel leil) read as the evening window.
- A bare hour ("at 6", "الساعة ٦", "bokra 6") with no am/pm and no part of the day reads 1-8 as pm
  and 9-11 as am and is ambiguous; 12 is noon; 0, 13-23 and "07:30" are the 24-hour clock. With
  "today"/"tonight", the other reading is taken when the first has passed ("today at 9" at 10:00 is
  21:00). English "noon" is 12:00; Arabic الضهر / Arabizi el dohr is the noon window.
- A weekday alone is its next occurrence; today only while still ahead (the time, the part's window,
  or with neither, before the evening window ends), and then ambiguous when no time was said.
- Weeks start on Sunday when the phrase is Arabic or Arabizi (الأسبوع الجاي, el esbo3 el gay, الحد
  الجاي) and on Monday when it is English, unless the message as a whole is Arabic or Arabizi.
  "Next week" is the 7 days from the next week start; "next <weekday>" is that weekday in next week,
  ambiguous when the same weekday comes sooner. "This week" runs from today to the next week start.
- The weekend is Friday-Saturday in the zones of FRIDAY_WEEKEND_ZONES (Egypt, most of the Gulf) and
  Saturday-Sunday elsewhere (London, Lagos). "This weekend" is the coming one (from today when today
  is in it); "next weekend" the one in next week, ambiguous when said on a weekday.
- "Any day" / "أي يوم" is the 7 days from today, unless a time or a part of the day is also said.
- Dates are day-first ("5/12" is 5 December; "12/25" is read month-first because it can only be);
  a date already past this year is next year, ambiguous when it passed less than a month ago; "the
  5th" already past this month is next month's, ambiguous. "6 October" and "15 May" are Cairo
  districts unless "on"/"يوم" or a year makes them dates.
- A "time" reading (no day said) starts at the next occurrence of that time: today, else tomorrow.
  A part of the day with no day is today's window, else tomorrow's when today's has ended.
- "after 5" / "بعد ٥" is a window from 17:00 to the end of the evening window (at least two hours);
  "before 12" / "قبل ١٢" from the start of the morning window; "between 5 and 7" / "من ٥ ل ٧" is that
  window. With a day they read as kind "part"; with no day as kind "time".
- "In 20 minutes" / "بعد ساعتين" / "ba3d rob3 sa3a" is an exact moment; "in 2 days" / "بعد يومين" a day.
- A day ruled out ("not today", "مش هينفع الخميس", "el khamis mesh hayenfa3") is not read; words that
  are also ordinary words (الاتنين / el etnein "both", "sat", "sun") are weekdays only beside a time
  or a part of the day, or with يوم / "on" / "next" / الجاي.
- Anything that has already passed is ambiguous, and so are two different days, times or parts.
- Prices, room counts, sizes, floors, phone numbers, durations and greetings ("good evening", صباح
  الخير, masa2 el kheir) never read as a time or a date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from execution.lib.criteria import (BEDROOM_WORDS, MILLION_WORDS, NUMBER_WORDS, PROPERTY_TYPE_WORDS, SIZE_WORDS,
                                    THOUSAND_WORDS, TWO_BEDROOM_WORDS, detect_language)
from execution.lib.text import normalize

DAY_PARTS = {"morning": (9, 12), "noon": (12, 14), "afternoon": (12, 17), "evening": (17, 21)}
FRIDAY_WEEKEND_ZONES = frozenset({"Africa/Cairo", "Egypt", "Asia/Riyadh", "Asia/Kuwait", "Asia/Qatar",
                                  "Asia/Bahrain", "Asia/Muscat", "Asia/Aden", "Asia/Baghdad"})
MAX_CHARS = 2000          # a time is said near the start of any real message; longer text is not read

_DAY_START = DAY_PARTS["morning"][0] * 60
_DAY_END = DAY_PARTS["evening"][1] * 60
KINDS = ("exact", "day", "part", "range", "time", "none")


@dataclass(frozen=True)
class When:
    kind: str
    start: datetime | None
    end: datetime | None
    ambiguous: bool
    matched: str


NOTHING = When("none", None, None, False, "")

# --- vocabulary (natural spellings; each is normalised when the patterns are built) --------------------

RELATIVE_DAYS = {   # (days from today, part of the day): (English spellings, Arabic and Arabizi spellings)
    (0, None): (["today", "todays", "today's", "tday", "2day", "2dy"],
                ["النهارده", "انهارده", "نهارده", "النهاردا", "انهاردا", "النهار ده", "اليوم", "enaharda", "el naharda",
                 "elnaharda", "ennaharda", "en naharda", "naharda", "el nharda", "nharda", "inaharda", "enharda",
                 "elnharda", "el neharda", "ennahrda", "elnahrda", "enahrda", "el nahrda"]),
    (0, "evening"): (["tonight", "tonite", "2nite", "2night", "this evening", "this eve"],
                     ["الليله", "الليلادي", "el leila", "el lela", "ellela", "elleila", "el leila di", "el lela de",
                      "ellila"]),
    (0, "morning"): (["this morning"], []),
    (0, "afternoon"): (["this afternoon"], []),
    (1, None): (["tomorrow", "tommorow", "tomorow", "tommorrow", "tomorrrow", "tomorro", "tomoro", "tmrw", "tmrow",
                 "tmr", "tmw", "tmorrow", "tomm", "2morrow", "2moro", "2morow", "2mrw", "2mrrw"],
                ["بكره", "بكرا", "بكرى", "غدا", "bokra", "bukra", "bokrah", "bukrah", "bkra", "bokraa", "bo2ra",
                 "bokre", "boukra"]),
    (2, None): (["the day after tomorrow", "day after tomorrow", "day after tmrw", "day after tmr", "after tomorrow"],
                ["بعد بكره", "بعد بكرا", "بعد غدا", "بعد غد", "ba3d bokra", "ba3d bukra", "b3d bokra", "ba3d bkra",
                 "baad bokra", "ba3d bokrah", "b3d bukra", "ba3d boukra"]),
}

# Python's weekday numbers: Monday 0 … Sunday 6. WEAK forms are also ordinary words ("both", "sat",
# "two"): they count only beside a time or a part of the day, or with a modifier ("on", "next", يوم).
WEEKDAYS = {
    6: ["sunday", "sundays", "sundy", "sunday's", "الاحد", "الحد", "يوم حد", "يوم احد", "el 7ad", "el had", "el a7ad",
        "el ahad", "el7ad", "l 7ad", "yom 7ad", "youm 7ad"],
    0: ["monday", "mondays", "mondy", "يوم اتنين", "yom etnein", "yom etnen"],
    1: ["tuesday", "tuesdays", "tusday", "teusday", "tuseday", "tuesdy", "الثلاثاء", "الثلاثا", "التلات", "التلاتاء",
        "يوم تلات", "el talat", "el tlat", "el tala2", "eltalat", "el solasa2", "yom talat"],
    2: ["wednesday", "wednesdays", "wensday", "wendsday", "wednsday", "wedensday", "wedneday", "wednesdy",
        "الاربعاء", "الاربعا", "الاربع", "يوم اربع", "el arba3", "el arbe3", "elarba3", "el arb3", "yom arba3"],
    3: ["thursday", "thursdays", "thrusday", "thursady", "thurday", "thursdy", "thuresday", "الخميس", "el khamis",
        "el 5amis", "el khamees", "el 5amees", "el kamis", "5amis", "khamis", "5amees", "khamees", "el5amis"],
    4: ["friday", "fridays", "firday", "fryday", "fridy", "الجمعه", "el gom3a", "el gum3a", "el gom3ah", "el jom3a",
        "el jum3a", "elgom3a", "el goma3", "yom gom3a"],
    5: ["saturday", "saturdays", "saterday", "saturady", "satarday", "saturdy", "السبت", "el sabt", "sabt",
        "elsabt", "yom sabt"],
}
WEAK_WEEKDAYS = {
    6: ["sun"], 0: ["mon", "الاتنين", "الاثنين", "el etnein", "el etnen", "el etneen", "el itnen", "el itnein",
                    "el ethnein", "el tanein"],
    1: ["tue", "tues", "el talata"], 2: ["wed", "weds", "el arba3a"], 3: ["thu", "thur", "thurs"],
    4: ["fri", "gom3a", "gum3a"], 5: ["sat"],
}
NEXT_BEFORE = ["next", "nxt", "the next"]
THIS_BEFORE = ["this", "this coming", "coming", "the coming", "upcoming", "on", "on this", "يوم", "yom", "youm",
               "yawm", "fe yom", "f yom"]
NEXT_AFTER = ["الجاي", "الجايه", "اللي جاي", "اللي جايه", "الي جاي", "الي جايه", "القادم", "القادمه", "المقبل",
              "el gay", "elly gay", "elli gay", "eli gay", "ely gay", "illi gay", "el gaya", "elly gaya", "elli gaya",
              "el gaye", "el gai", "elgay", "elly gai", "el 2adem", "el qadem", "el gaay"]
THIS_AFTER = ["ده", "دا", "دي", "ديه", "الحالي", "da", "dah", "di", "deh", "dy", "de"]

WEEK = ["اسبوع", "الاسبوع", "esbo3", "el esbo3", "el esboo3", "el osbo3", "el usbu3", "el esbou3", "el esbu3",
        "el isbo3", "el asbo3", "el esbo3", "elesbo3", "esboo3", "osbo3", "usbu3", "el esboa3"]
_EN_WEEKEND = ["weekend", "weekends", "wkend", "wknd", "week end", "week-end"]
WEEKEND = [*_EN_WEEKEND, "الويك اند", "الويكند", "ويك اند", "ويكند", "الويك", "نهايه الاسبوع", "اجازه الاسبوع",
           "el weekend", "el wikend", "el week end", "el wekend", "el weekand", "agazet el esbo3"]
MONTH_WORDS = ["الشهر", "el shahr", "elshahr", "el sha7r"]
ANY_DAY = ["any day", "anyday", "any time", "anytime", "whenever", "any day works", "اي يوم", "اي وقت", "اي ميعاد",
           "ay yom", "ay youm", "ai yom", "ayy yom", "ay wa2t", "ay wa2et", "ay waqt", "ay ma3ad", "ay mi3ad"]

DAY_PART_WORDS = {
    "morning": ["morning", "mornings", "mornin", "morn", "early morning", "in the morning", "الصبح", "صباحا", "الصباح",
                "صبحا", "بدري", "الصبحيه", "el sob7", "sob7", "el sobh", "sobh", "es sob7", "elsob7", "el soboh",
                "el saba7", "saba7an", "sabahan", "badri", "badry", "bdri", "el subh", "el sub7", "before noon",
                "first thing", "first thing in the morning",
                "before lunch", "قبل الضهر", "قبل الظهر", "2abl el dohr", "abl el dohr", "2abl el do7r"],
    "noon": ["lunch", "lunchtime", "lunch time", "الضهر", "الظهر", "ضهرا", "ظهرا", "الضهريه", "وقت الغدا", "el dohr",
             "dohr", "do7r", "el do7r", "el zohr", "zohr", "el duhr", "duhr", "eldohr", "el dhohr"],
    "afternoon": ["afternoon", "afternoons", "aftrnoon", "afternon", "after noon", "after lunch", "بعد الضهر",
                  "بعد الظهر", "العصر", "عصرا", "بعد الغدا", "ba3d el dohr", "ba3d dohr", "ba3d el do7r", "b3d el dohr",
                  "ba3d el zohr", "el 3asr", "3asr", "ba3d el 3asr", "ba3d el ghada"],
    "evening": ["evening", "evenings", "evning", "in the evening", "night", "at night", "nite", "after work",
                "المسا", "المساء", "مساء", "مساءا", "مسا", "بالليل", "بليل", "باليل", "ليلا", "بالمسا", "المغرب",
                "بعد المغرب", "العشا", "بعد العشا", "bel leil", "bel lel", "bellel", "belleil", "bel leel", "bil leil",
                "bil lel", "belil", "bllel", "bel lil", "fel leil", "el masa", "masa2an", "masaan", "masa2", "bel masa",
                "el maghrib", "el maghreb", "ba3d el maghrib", "el 3esha", "ba3d el 3esha"],
}
# Clock hours said in words; English "one" only with am/pm or o'clock ("at one of them").
CLOCK_WORDS = {
    "واحده": 1, "اتنين": 2, "اثنين": 2, "تلاته": 3, "ثلاثه": 3, "اربعه": 4, "خمسه": 5, "سته": 6, "سبعه": 7,
    "تمانيه": 8, "ثمانيه": 8, "تسعه": 9, "عشره": 10, "حداشر": 11, "احداشر": 11, "اتناشر": 12, "اثناشر": 12,
    "wa7da": 1, "wahda": 1, "we7da": 1, "etnein": 2, "etnen": 2, "itnen": 2, "etneen": 2, "talata": 3, "tlata": 3,
    "arba3a": 4, "arb3a": 4, "5amsa": 5, "khamsa": 5, "setta": 6, "sitta": 6, "sab3a": 7, "saba3a": 7,
    "tamanya": 8, "tamania": 8, "tmanya": 8, "tes3a": 9, "tis3a": 9, "3ashra": 10, "3ashara": 10,
    "7edashar": 11, "hedashar": 11, "7dashar": 11, "etnashar": 12, "itnashar": 12, "etnash": 12,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12,
}
FRACTIONS = {
    30: ["ونص", "و نص", "والنص", "ونصف", "و نصف", "w nos", "we nos", "wi nos", "w noss", "wnos", "w nus", "w nuss",
         "and a half", "thirty"],
    15: ["وربع", "و ربع", "w rob3", "we rob3", "wi rob3", "w rub3", "and a quarter", "fifteen"],
    20: ["وتلت", "و تلت", "وثلث", "w telt", "we telt"],
    45: ["forty five", "forty-five"],
    -15: ["الا ربع", "الا الربع", "ila rob3", "ela rob3", "illa rob3", "ella rob3", "ila rub3", "ela rub3"],
    -20: ["الا تلت", "الا ثلث", "ela telt", "illa telt", "ila telt"],
}
CLOCK_TRIGGERS = ["at", "@", "الساعه", "ساعه", "بالساعه", "في الساعه", "ف الساعه", "el sa3a", "elsa3a", "el saa3a",
                  "el sa3ah", "es sa3a", "sa3a", "fel sa3a", "f el sa3a", "fi el sa3a", "at about", "at around"]
AT_TRIGGERS = ["by", "على", "ع", "3la", "3ala", "3al", "ala"]
WEAK_TRIGGERS = ["around", "about", "abt", "approx", "approximately", "حوالي", "حوالى", "7awaly", "7awali",
                 "ta2riban", "taqriban", "تقريبا"]
AFTER_WORDS = ["after", "afer", "any time after", "anytime after", "بعد", "ba3d", "b3d", "baad"]
BEFORE_WORDS = ["before", "befor", "b4", "قبل", "abl", "2abl", "until", "till", "til", "untill", "لحد", "le7ad",
                "l7ad", "lehad"]
SPAN_FROM = ["between", "from", "من", "ما بين", "بين", "men", "mn", "ben", "bein", "beyn", "ma ben"]
MONTHS = {
    1: ["january", "jan", "janurary", "يناير"], 2: ["february", "feb", "febuary", "فبراير"],
    3: ["march", "mar", "مارس"], 4: ["april", "apr", "ابريل"], 5: ["may", "مايو"], 6: ["june", "jun", "يونيو", "يونيه"],
    7: ["july", "jul", "يوليو", "يوليه"], 8: ["august", "aug", "اغسطس"],
    9: ["september", "sept", "sep", "سبتمبر"], 10: ["october", "oct", "اكتوبر"],
    11: ["november", "nov", "نوفمبر"], 12: ["december", "dec", "decemeber", "ديسمبر"],
}
PLACE_DATES = {(6, 10), (15, 5)}   # "6 October" City, "15 May" City

GREETINGS = [
    r"good\s+(?:morning|afternoon|evening|night|day)", r"(?:morning|evening)\s+(?:all|everyone|sir|madam|team|guys)",
    r"(?:صباح|صباحو|مساء|مسا|مساءو)\s*(?:ال)?(?:خير|نور|فل|ورد|جمال|عسل|قشطه|ياسمين)",
    r"(?:sabah|saba7|sba7|sabaa7|sabah|masa2|masa|masaa|mesa|masa2o|sba7o)\s*(?:el|al|l|e)?\s*"
    r"(?:kheir|khair|kher|khir|5eir|5eer|5er|5air|5ir|nour|noor|nor|fol|full|ward|gamal)",
    r"تصبح\s+علي\s+خير", r"tesba7\s+3ala\s+(?:kheir|5eir|5eer|5er|khair)", r"gm", r"gn",
]
PAST = [r"yesterday", r"yday", r"last\s+(?:night|week|wk|month|weekend|time|year|\w+day)", r"امبارح", r"امبارحه",
        r"البارحه", r"امس", r"embare7", r"mbare7", r"imbare7", r"embar7", r"el\s+leila\s+elly\s+fatet",
        r"(?:[^\s]+\s+)?[^\s]+\s+(?:اللي|الي|illi|elly|elli|eli|ely|el)\s*(?:فات|فاتت|fat|fatet)",
        r"(?:[^\s]+\s+)?[^\s]+\s+(?:الماضي|الماضيه|الفايت|الفايته)"]
QUANTITY_UNITS = [
    *BEDROOM_WORDS, *TWO_BEDROOM_WORDS, *THOUSAND_WORDS, *(w for w in SIZE_WORDS if w != "م"),
    *(w for w in MILLION_WORDS), *(w for words in PROPERTY_TYPE_WORDS.values() for w in words),
    "egp", "l.e", "l.e.", "usd", "gbp", "ngn", "naira", "pounds", "pound", "dollars", "dollar", "جنيه", "جنيها",
    "جنيهات", "ج", "دولار", "geneh", "gneh", "ginih", "bathrooms", "bathroom", "baths", "bath", "toilets", "wc",
    "حمام", "حمامات", "7amam", "7mam", "people", "persons", "person", "pax", "adults", "kids", "children", "family",
    "اشخاص", "افراد", "نفر", "أفراد", "years", "year", "yrs", "yr", "سنه", "سنين", "سنوات", "sana", "sneen", "snin",
    "months", "month", "شهور", "اشهر", "shohor", "weeks", "اسابيع", "days", "ايام", "ayam", "minutes", "minute",
    "mins", "min", "دقيقه", "دقايق", "دقائق", "da2aye2", "d2aye2", "hours", "hrs", "ساعات", "sa3at", "km", "كم",
    "كيلو", "units", "unit", "وحدات", "وحده", "شقق", "options", "listings", "cars", "car", "عربيه", "عربيات",
    "installments", "installment", "اقساط", "قسط", "دفعات", "دفعه", "payments", "floors", "storeys", "ادوار",
    "sqft", "ft", "feet", "acres", "فدان", "قيراط", "stars", "نجوم", "percent", "بالميه", "في الميه",
    "down payment", "مقدم", "ma2dam", "pcm", "pw",
]
NUMBER_PREFIXES = [
    "floor", "flr", "level", "phase", "building", "bldg", "block", "blk", "gate", "unit", "apt", "apartment", "flat",
    "villa", "tower", "zone", "district", "street", "st", "road", "rd", "plot", "house", "room", "no", "no.",
    "number", "num", "nr", "#", "bus", "line", "exit", "parcel", "الدور", "دور", "مرحله", "المرحله", "عماره",
    "العماره", "بلوك", "البلوك", "بوابه", "البوابه", "شارع", "الشارع", "برج", "البرج", "قطعه", "مبني", "المبني",
    "رقم", "الحي", "حي", "المجاوره", "مجاوره", "منطقه", "فيلا", "شقه", "el dor", "dor", "el door", "mar7ala",
    "el mar7ala", "3emara", "el 3emara", "borg", "bawaba", "el bawaba", "share3", "el share3", "7ay", "el 7ay",
    "mogawra", "el mogawra", "rakam", "nmr", "ra2am", "sha2a", "etisalat", "vodafone", "orange", "we",
]
ORDINAL_NOUNS = [
    "one", "ones", "option", "options", "listing", "unit", "photo", "pic", "picture", "image", "video", "link",
    "property", "house", "flat", "apartment", "villa", "place", "offer", "choice", "message", "time", "visit",
    "floor", "settlement", "district", "street", "avenue", "ave", "phase", "payment", "installment", "year",
    "bedroom", "room", "row", "gate", "building", "tower", "block", "compound", "stage", "round", "ring", "zone",
    "circle", "neighborhood", "neighbourhood", "quarter", "century", "anniversary", "birthday", "grade",
]


# --- patterns -----------------------------------------------------------------------------------------

def _key(phrase: str) -> str:
    return " ".join(phrase.split())


def _forms(words) -> list[str]:
    return sorted({_key(normalize(w)) for w in words}, key=len, reverse=True)


def _alt(words) -> str:
    return "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in _forms(words))


_L = "a-z0-9\u0621-\u064a"
_B = rf"(?<![{_L}])"                      # start of a word (letters and digits both count)
_E = rf"(?![{_L}])"                       # end of a word
_CLITIC = r"(?:[وفبل](?=[\u0621-\u064a]))?"   # و ف ب ل glued to an Arabic word
_NB = r"(?<![a-z0-9.,:/])"                # start of a number
_NE = r"(?![0-9])(?![.,][0-9])"           # end of a number


def _words(words, name: str | None = None) -> str:
    inner = rf"(?P<{name}>{_alt(words)})" if name else rf"(?:{_alt(words)})"
    return rf"{_B}{_CLITIC}{inner}{_E}"


def _lookup(table: dict, phrase: str):
    return table.get(_key(phrase))


_QNUM = rf"(?:[0-9]+(?:[.,][0-9]+)*|(?:ال)?(?:{_alt([*NUMBER_WORDS, *CLOCK_WORDS])}))"
_QFRAC = rf"(?:\s*(?:{_alt(['ونص', 'و نص', 'w nos', 'we nos', 'and a half', 'ونصف'])}))?"
_QUNIT = _alt(QUANTITY_UNITS)
_CONNECT = rf"(?:-|–|~|/|(?:to|and|or|w|we|aw|l|le|till){_E}|او|و|ل|الي|لحد)"

_MER = rf"(?:am|a\.m\.?|pm|p\.m\.?|ص|م){_E}"
_FRAC = {_key(normalize(w)): v for v, words in FRACTIONS.items() for w in words}
_PART = {_key(normalize(w)): part for part, words in DAY_PART_WORDS.items() for w in words}
_PART_LEAD = r"(?:(?:in\s+the|at|this|el|fel|f|في|ف)\s+)?"
_CLOCK = {normalize(k): v for k, v in CLOCK_WORDS.items()}
_HOUR_END = r"(?=$|[^a-z0-9]|am|pm|a\.|p\.|ish|o'?clock|h(?![a-z]))"
_TRIGGERS = rf"(?:(?:{_words(CLOCK_TRIGGERS + AT_TRIGGERS + WEAK_TRIGGERS)}|@)\s*)+"


_NOT_OK = (r"(?:هينفع|ينفع|هيتنفع|هينفعني|ينفعني|مناسب|هاينفع|hayenfa3|hayenfa3ny|yenfa3|ynf3|hynf3|hyenfa3|mnasb"
           r"|monaseb)")
_RANGE_FORMS = {   # group name: range, the phrase's language ("ar" for Arabic and Arabizi, "x" for the message's)
    "next_week__ar": rf"(?:{_alt(WEEK)})\s+(?:{_alt(NEXT_AFTER)})",
    "next_week__x": r"(?:next|nxt|the\s+coming)\s+(?:week|wk)",
    "this_week__ar": rf"(?:{_alt(WEEK)})\s+(?:{_alt(THIS_AFTER)})",
    "this_week__x": r"this\s+(?:week|wk)",
    "next_weekend__ar": rf"(?:{_alt(WEEKEND)})\s+(?:{_alt(NEXT_AFTER)})",
    "next_weekend__x": rf"next\s+(?:{_alt(_EN_WEEKEND)})",
    "this_weekend__x": rf"(?:this\s+coming|this|the|on\s+the)\s+(?:{_alt(_EN_WEEKEND)})",
    "this_weekend__ar": rf"(?:{_alt(WEEKEND)})(?:\s+(?:{_alt(THIS_AFTER)}){_E})?",
    "next_month__ar": rf"(?:{_alt(MONTH_WORDS)})\s+(?:{_alt(NEXT_AFTER)})",
    "next_month__x": r"next\s+month",
    "this_month__ar": rf"(?:{_alt(MONTH_WORDS)})\s+(?:{_alt(THIS_AFTER)})",
    "this_month__x": r"this\s+month",
    "any_day__x": _alt(ANY_DAY),
}


def _time_pattern(n: str = "") -> str:
    """One clock reading; `n` suffixes the group names so a span of two can be one pattern."""
    return (rf"(?:{_NB}(?P<h{n}>[0-9]{{1,2}})(?:(?P<sep{n}>[:.])(?P<m{n}>[0-9]{{2}}))?(?![0-9]){_HOUR_END}"
            rf"|{_B}(?P<hw{n}>{_alt(_CLOCK)}){_E})"
            rf"(?:\s*(?P<frac{n}>{_alt(_FRAC)}){_E})?"
            rf"(?:\s*(?P<mer{n}>{_MER}))?")


_P = {
    "greeting": re.compile("|".join(rf"{_B}(?:{g}){_E}" for g in GREETINGS)),
    "greeting_start": re.compile(r"^\s*(?:morning|evening|afternoon)\s*(?=[,!])"),
    "past": re.compile("|".join(rf"{_B}(?:{p}){_E}" for p in PAST)),
    "duration": re.compile(
        r"(?<!علي )(?<!ع )(?<!3ala )(?<!3la )(?<!3al )"      # "على بعد ٥ دقايق": five minutes away
        rf"{_B}(?P<lead>in|بعد|كمان|ba3d|b3d|baad|kaman|kman){_E}\s*(?:(?P<n>[0-9]{{1,2}}|a|an|one|two|three|"
        rf"four|five|six|seven|couple\s+of|تلات|اربع|خمس|talat|arba3|5ams)\s*)?"
        rf"(?P<unit>days?|hours?|hrs?|ايام|يومين|ساعه|ساعتين|ساعات|ayam|yomein|yomen|yomeen|youmein|sa3a|sa3ten|"
        rf"sa3tein|sa3teen|sa3at|half\s+an\s+hour|نص\s+ساعه|nos\s+sa3a|ربع\s+ساعه|rob3\s+sa3a|"
        rf"(?:a\s+)?quarter\s+of\s+an\s+hour|minutes|mins|min|دقيقه|دقايق|دقائق|da2aye2|d2aye2|da2ay2){_E}"
        rf"(?:\s+(?:time|from\s+now))?"),
    "phone": re.compile(r"\+[0-9][0-9 \-]{7,}[0-9]|(?<![0-9])[0-9]{7,}(?![0-9])"),
    "reference": re.compile(r"(?<![a-z0-9])[a-z]{1,5}-[0-9]{1,8}(?![0-9])"),
    "grouped": re.compile(r"(?<![0-9])[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?"            # 6,500,000
                          r"|(?<![0-9.])[0-9]+\.(?:[0-9]|[0-9]{3,})(?![0-9])"          # 6.5 (6.30 may be a time)
                          r"|(?<![0-9])(?:24/7|7/24|24/24|7/7|365)(?![0-9])|[0-9]+(?:\.[0-9]+)?\s*[%٪]"),
    "currency": re.compile(r"(?:(?<![a-z])(?:egp|l\.e\.?|usd|gbp|ngn)|£|\$|€|₦|جنيه)\s*[0-9][0-9,.]*"),
    "quantity": re.compile(
        rf"(?<![a-z0-9]){_QNUM}{_QFRAC}(?:\s*{_CONNECT}\s*{_QNUM}{_QFRAC})?\s*\+?\s*-?\s*(?:{_QUNIT}){_E}"),
    "prefixed": re.compile(rf"(?:{_words(NUMBER_PREFIXES)}|#)\s*(?:el\s+|ال)?(?:no\.?\s*|#|رقم\s*)?[0-9]+[a-z]?"
                           rf"(?!\s*(?:am|pm|:|ص{_E}|م{_E}))"),
    "ordinal_noun": re.compile(rf"{_NB}[0-9]{{1,3}}\s*(?:st|nd|rd|th)\s+(?:of\s+(?:the\s+)?)?(?:{_alt(ORDINAL_NOUNS)})"
                               rf"{_E}"),
    "span": re.compile(
        rf"(?:(?P<key>{_words(SPAN_FROM)})\s*)?(?P<trig>{_TRIGGERS})?{_time_pattern('1')}\s*"
        rf"(?:-|–|~|(?:to|till|until|and|w|we|l|le|lel){_E}|الي|لحد|لل|ل|و)\s*(?:(?:الساعه|el\s+sa3a){_E}\s*)?"
        rf"{_time_pattern('2')}(?:\s*{_PART_LEAD}(?P<part>{_alt(_PART)}){_E})?"),
    "month_date": re.compile(
        rf"(?P<on>{_B}(?:on|يوم|yom|youm|fe\s+yom|f\s+yom){_E}\s*)?(?:{_B}the\s+)?"
        rf"(?:{_NB}(?P<d1>[0-9]{{1,2}})(?:st|nd|rd|th)?{_NE}\s*(?:of\s+|من\s+(?:شهر\s+)?|شهر\s+)?"
        rf"(?:(?P<mon1>{_alt(w for ws in MONTHS.values() for w in ws)}){_E}|(?<=شهر )(?P<mnum>[0-9]{{1,2}}){_NE})"
        rf"|{_B}(?P<mon2>{_alt(w for ws in MONTHS.values() for w in ws)}){_E}\s*(?:the\s+)?"
        rf"(?P<d2>[0-9]{{1,2}})(?:st|nd|rd|th)?{_NE})"
        rf"(?:\s*,?\s*(?P<year>20[0-9]{{2}}){_NE})?"),
    "numeric_date": re.compile(r"(?<![0-9a-z.:/])(?:(?P<a>[0-9]{1,2})(?P<sep>[/-])(?P<b>[0-9]{1,2})"
                               r"(?:(?P=sep)(?P<year>20[0-9]{2}|[0-9]{2}))?"
                               r"|(?P<da>[0-9]{1,2})\.(?P<db>[0-9]{1,2})(?:\.(?P<dyear>20[0-9]{2}))?)"
                               r"(?![0-9:])(?![/.-][0-9])"),
    "day_of_month": re.compile(
        rf"(?:{_B}(?:on\s+the|on|the){_E}\s+{_NB}(?P<d1>[0-9]{{1,2}})(?:st|nd|rd|th){_E}"
        rf"|{_B}on\s+the\s+{_NB}(?P<d2>[0-9]{{1,2}}){_NE}"
        rf"|{_B}(?:يوم|yom|youm){_E}\s*(?P<d3>[0-9]{{1,2}}){_NE}(?!\s*(?:[/-]|{_MER}))"
        rf"|{_NB}(?P<d4>[0-9]{{1,2}}){_NE}\s*(?:من\s+|في\s+|fel\s+|fe\s+el\s+|of\s+)?(?:الشهر|el\s+shahr|this\s+month|"
        rf"the\s+month){_E})"),
    "range": re.compile("|".join(rf"{_B}{_CLITIC}(?P<{name}>{body}){_E}" for name, body in _RANGE_FORMS.items())),
    "relative": re.compile(_words((w for pair in RELATIVE_DAYS.values() for words in pair for w in words), "w")),
    "weekday": re.compile(
        rf"(?:(?P<pre>{_words(NEXT_BEFORE + THIS_BEFORE)})\s*)?"
        rf"{_words([w for ws in (*WEEKDAYS.values(), *WEAK_WEEKDAYS.values()) for w in ws], 'day')}"
        rf"(?!\s+(?:الادني|الاقصي|ادني|اقصي))(?:\s*(?P<post>{_words(NEXT_AFTER + THIS_AFTER)}))?"),
    "quarter": re.compile(
        rf"{_B}(?:(?P<q>quarter|half)\s+(?P<rel>past|after|to|til|till){_E}|half{_E})\s*"
        rf"(?:{_NB}(?P<h>[0-9]{{1,2}}){_NE}|(?P<hw>{_alt(k for k in CLOCK_WORDS if k.isascii() and k.isalpha())}){_E})"
        rf"(?:\s*(?P<mer>{_MER}))?"),
    "time": re.compile(
        rf"(?:(?P<mod>{_words(AFTER_WORDS + BEFORE_WORDS)})\s*)?(?P<trig>{_TRIGGERS})?{_time_pattern()}"
        rf"(?:\s*(?P<oclock>o'?clock|oclock|sharp|ish){_E})?(?:\s*{_PART_LEAD}(?P<part>{_alt(_PART)}){_E})?"),
    "part": re.compile(_words(_PART, "w")),
    "noon": re.compile(rf"{_B}(?:(?:at|around)\s+)?(?:12\s*)?(?:noon|midday|mid\s*day|mid-day){_E}"),
    "bare_after": re.compile(r"[\s,]*(?:at\s+|the\s+)?(?P<h>[0-9]{1,2})(?P<ord>st|nd|rd|th)?(?![0-9])"
                             r"(?![a-z\u0621-\u064a])(?![.,:/-]?[0-9])"),
    "bare_before": re.compile(rf"{_NB}(?P<h>[0-9]{{1,2}})\s+$"),
    "negated": re.compile(
        rf"{_B}(?:not|mesh|msh|mish|mush|مش|مو|except|ماعدا|غير|can'?t\s+(?:do|make)(?:\s+it)?|cannot\s+(?:do|make)"
        rf"(?:\s+it)?|won'?t\s+(?:be\s+able\s+to\s+)?make(?:\s+it)?){_E}(?:\s+{_NOT_OK}{_E})?[\s,]*(?:on\s+)?$"),
    "negated_after": re.compile(rf"[\s,]*(?:(?:مش|mesh|msh|mish|mush)\s+{_NOT_OK}|(?:won'?t|doesn'?t|does\s+not|isn'?t)"
                                rf"\s+(?:work|suit|possible|good|ok)|is\s+not\s+(?:possible|good|ok)|no\s+good){_E}"),
}
_DAY_FORMS = {f: wd for wd, words in WEEKDAYS.items() for f in _forms(words)}
_WEAK_FORMS = {f: wd for wd, words in WEAK_WEEKDAYS.items() for f in _forms(words)}
_NEXT = set(_forms(NEXT_BEFORE + NEXT_AFTER))
_RELATIVE = {f: key for key, pair in RELATIVE_DAYS.items() for f in _forms(pair[0] + pair[1])}
_ENGLISH_RELATIVE = {f for english, _ in RELATIVE_DAYS.values() for f in _forms(english)}
_MONTHS = {f: m for m, words in MONTHS.items() for f in _forms(words)}
_STRONG_TRIGGERS = set(_forms(CLOCK_TRIGGERS + AT_TRIGGERS)) | {"@"}
_WORD_TRIGGERS = set(_forms(CLOCK_TRIGGERS)) | {"@"}
_AFTER = set(_forms(AFTER_WORDS))
_TRIGGER_TOKEN = re.compile(rf"{_alt(CLOCK_TRIGGERS + AT_TRIGGERS + WEAK_TRIGGERS)}|@")
_SHIFTING = re.compile("[\u0640\u064b-\u0652\u0670\u0130]")   # normalize() drops these, or lower() doubles it
_FOLD_EXTRA = str.maketrans({"٫": ".", "٬": ",", "’": "'", "‘": "'", "،": ",", "؟": "?", "؛": ";",
                             **{c: " " for c in "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                               "\u2066\u2067\u2068\u2069\ufeff\u00a0"}})


# --- what the text says ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int                    # may be negative: "7 الا ربع" is hour 7, minute -15
    meridiem: str | None           # "am", "pm", or "24" when the hour itself says (0, 13-23, "07")
    part: str | None = None        # a part of the day said next to the time
    mod: str | None = None         # "after" | "before"
    until: _Clock | None = None    # the end of "between 5 and 7"


@dataclass
class _Said:
    days: list = field(default_factory=list)        # (position, priority, kind, value); priority 0 is surest
    ranges: list = field(default_factory=list)      # (position, name, language hint)
    clocks: list = field(default_factory=list)      # (position, _Clock)
    parts: list = field(default_factory=list)       # (position, part)
    moments: list = field(default_factory=list)     # (position, timedelta)
    day_spans: list = field(default_factory=list)   # (start, end, kind, English relative day?)
    spans: list = field(default_factory=list)       # what was read, for `matched`

    def day(self, m: re.Match, priority: int, kind: str, value, *, english: bool = False) -> None:
        self.days.append((m.start(), priority, kind, value))
        self.day_spans.append((m.start(), m.end(), kind, english))
        self.spans.append(m.span())

    def clock(self, m: re.Match, clock: _Clock) -> None:
        self.clocks.append((m.start(), clock))
        self.spans.append(m.span())


def read_when(text: str, *, now: datetime) -> When:
    """When the customer wants to come, counted from `now` (aware, in the agent's time zone)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(text, str) or not text.strip():
        return NOTHING
    text = text[:MAX_CHARS]
    folded, origin = _fold(text)
    said = _Said()
    work = _scan(folded, said)
    _bare_hours(work, said)
    result = _decide(said, now=now, text=text)
    if result is None:
        return NOTHING
    merged: list[list[int]] = []
    for a, b in sorted(said.spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    matched = " ".join(_original(text, origin, a, b) for a, b in merged)
    return When(*result, " ".join(matched.split()))


def _fold(text: str) -> tuple[str, list[int] | None]:
    """Normalised text, and where each of its characters came from when the lengths differ."""
    folded = normalize(text).translate(_FOLD_EXTRA)
    if len(folded) == len(text) and not _SHIFTING.search(text):
        return folded, None
    pieces, origin = [], []
    for i, ch in enumerate(text):
        piece = normalize(ch).translate(_FOLD_EXTRA)
        pieces.append(piece)
        origin.extend([i] * len(piece))
    return "".join(pieces), origin


def _original(text: str, origin: list[int] | None, a: int, b: int) -> str:
    if origin is None:
        return text[a:b]
    if a >= len(origin) or b <= a:
        return ""
    return text[origin[a]: origin[min(b, len(origin)) - 1] + 1]


def _blank(work: str, m: re.Match, fill: str = " ") -> str:
    """Blank what was read; a ruled-out day is filled so that no rule reads across where it was."""
    a, b = m.span()
    return work[:a] + fill * (b - a) + work[b:]


def _scan(work: str, said: _Said) -> str:
    """Read what the text says, most specific first, blanking each thing read so nothing is read twice."""
    opening = _P["greeting_start"].match(work)
    if opening:
        work = _blank(work, opening)
    for name in ("greeting", "past"):
        for m in _P[name].finditer(work):
            work = _blank(work, m)
    for m in _P["duration"].finditer(work):
        delta = _duration(m)
        if delta is not None and delta.seconds == 0 and delta.days:
            said.day(m, 1, "rel", delta.days)
        elif delta is not None:
            said.moments.append((m.start(), delta))
            said.spans.append(m.span())
        work = _blank(work, m)
    for name in ("phone", "reference", "grouped", "currency", "ordinal_noun", "prefixed", "quantity"):
        for m in _P[name].finditer(work):
            work = _blank(work, m)
    for m in _P["span"].finditer(work):
        clock = _span_clock(m)
        if clock:
            said.clock(m, clock)
            work = _blank(work, m)
    work = _scan_dates(work, said)
    for m in _P["range"].finditer(work):
        name, hint = m.lastgroup.split("__")
        said.ranges.append((m.start(), name, None if hint == "x" else hint))
        said.spans.append(m.span())
        work = _blank(work, m)
    for m in _P["relative"].finditer(work):
        if _negated(work, m):
            work = _blank(work, m, "|")
            continue
        work = _blank(work, m)
        offset, part = _lookup(_RELATIVE, m.group("w"))
        said.day(m, 1, "rel", offset, english=_key(m.group("w")) in _ENGLISH_RELATIVE)
        if part:
            said.parts.append((m.start(), part))
    weekdays = []
    for m in _P["weekday"].finditer(work):
        if _negated(work, m):
            work = _blank(work, m, "|")
            continue
        work = _blank(work, m)
        day = _key(m.group("day"))
        pre, post = _key(m.group("pre") or ""), _key(m.group("post") or "")
        weak = day in _WEAK_FORMS and not pre and not post
        mod = "next" if (pre in _NEXT or post in _NEXT) else None
        hint = "ar" if post in _NEXT else None
        weekdays.append((m, weak, (_DAY_FORMS.get(day, _WEAK_FORMS.get(day)), mod, hint)))
    work = _scan_clocks(work, said, has_day=bool(said.days or any(not weak for _, weak, _ in weekdays)))
    context = said.days or said.clocks or said.parts or said.moments or any(not weak for _, weak, _ in weekdays)
    for m, weak, value in weekdays:
        if context or not weak:
            said.day(m, 2, "weekday", value)
    return work


def _negated(work: str, m: re.Match) -> bool:
    """ "not today", "مش هينفع الخميس", "el khamis mesh hayenfa3": a day the customer rules out."""
    before = _P["negated"].search(work, max(0, m.start() - 40), m.start())
    return bool(before or _P["negated_after"].match(work, m.end()))


def _scan_dates(work: str, said: _Said) -> str:
    months = _P["month_date"]
    for m in months.finditer(work):
        if m.group("d1"):
            day = int(m.group("d1"))
            month = _MONTHS.get(_key(m.group("mon1"))) if m.group("mon1") else int(m.group("mnum"))
        else:
            day, month = int(m.group("d2")), _MONTHS.get(_key(m.group("mon2")))
        year = int(m.group("year")) if m.group("year") else None
        if (day, month) in PLACE_DATES and not (m.group("on") or year):
            work = _blank(work, m)          # a district of Cairo, not a date
        elif month and 1 <= month <= 12 and 1 <= day <= 31:
            said.day(m, 0, "date", (year, month, day))
            work = _blank(work, m)
    for m in _P["numeric_date"].finditer(work):
        if m.group("da") and not (m.group("dyear") or int(m.group("da")) > 23):
            continue                                    # "6.30" is a time, "27.11" and "5.12.2026" are dates
        a, b = int(m.group("a") or m.group("da")), int(m.group("b") or m.group("db"))
        day, month = (a, b) if b <= 12 else (b, a)      # day first, unless only month first can be
        if 1 <= month <= 12 and 1 <= day <= 31:
            year = m.group("year") or m.group("dyear")
            year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
            said.day(m, 0, "date", (year, month, day))
            work = _blank(work, m)
    for m in _P["day_of_month"].finditer(work):
        day = int(next(g for g in m.group("d1", "d2", "d3", "d4") if g))
        if 1 <= day <= 31:
            said.day(m, 3, "dom", day)
            work = _blank(work, m)
    return work


def _scan_clocks(work: str, said: _Said, *, has_day: bool) -> str:
    for m in _P["quarter"].finditer(work):
        hour = int(m.group("h")) if m.group("h") else _CLOCK.get(_key(m.group("hw") or ""), 0)
        if 1 <= hour <= 12:
            minute = 15 if m.group("q") == "quarter" else 30
            if m.group("rel") in ("to", "til", "till"):
                minute = -minute
            said.clock(m, _Clock(hour, minute, _meridiem(m.group("mer"), hour, "")))
            work = _blank(work, m)
    for m in _P["time"].finditer(work):
        clock = _clock(m)
        if clock is not None:
            said.clock(m, clock)
            if clock.part:
                said.parts.append((m.start("part"), clock.part))
            work = _blank(work, m)
    for m in _P["part"].finditer(work):
        said.parts.append((m.start(), _lookup(_PART, m.group("w"))))
        said.spans.append(m.span())
        work = _blank(work, m)
    for m in _P["noon"].finditer(work):
        said.clock(m, _Clock(12, 0, "24"))
        work = _blank(work, m)
    if has_day or said.days or said.parts or said.clocks:
        for m in _P["time"].finditer(work):     # "around 7", "9.30" are times only beside a day or a time of day
            clock = _clock(m, around=True)
            if clock is not None:
                said.clock(m, clock)
                work = _blank(work, m)
    return work


def _bare_hours(work: str, said: _Said) -> None:
    """A number right after a day ("bokra 6", "Thursday 26th"), or before an English one ("6 tomorrow")."""
    for start, end, kind, english in list(said.day_spans):
        if kind not in ("rel", "weekday"):
            continue
        m = _P["bare_after"].match(work, end)
        if m:
            n, ordinal = int(m.group("h")), m.group("ord")
            if kind == "weekday" and (ordinal or 13 <= n <= 31):
                said.days.append((m.start("h"), 3, "dom", n))
            elif not ordinal and 1 <= n <= 23:
                said.clocks.append((m.start("h"), _Clock(n, 0, "24" if n > 12 else None)))
            else:
                continue
            said.spans.append((m.start("h"), m.end()))
        elif english:
            m = _P["bare_before"].search(work, 0, start)
            if m and 1 <= int(m.group("h")) <= 12:
                said.clocks.append((m.start("h"), _Clock(int(m.group("h")), 0, None)))
                said.spans.append(m.span("h"))


def _duration(m: re.Match) -> timedelta | None:
    amount, unit = _key(m.group("n") or ""), _key(m.group("unit"))
    if unit in ("يومين", "yomein", "yomen", "yomeen", "youmein"):
        return timedelta(days=2)
    if unit in ("ساعتين", "sa3ten", "sa3tein", "sa3teen"):
        return timedelta(hours=2)
    if unit in ("half an hour", "نص ساعه", "nos sa3a"):
        return timedelta(minutes=30)
    if unit in ("ربع ساعه", "rob3 sa3a", "quarter of an hour", "a quarter of an hour"):
        return timedelta(minutes=15)
    if unit in ("minutes", "mins", "min", "دقيقه", "دقايق", "دقائق", "da2aye2", "d2aye2", "da2ay2"):
        n = int(amount) if amount.isdigit() else _COUNT.get(amount) if amount else None
        return timedelta(minutes=n) if n and n <= 90 else None
    n = int(amount) if amount.isdigit() else _COUNT.get(amount)
    if not n or (not amount and unit in ("ساعات", "sa3at", "hours", "hrs", "days", "ايام", "ayam")):
        return None
    if unit in ("day", "days", "ايام", "ayam"):
        return timedelta(days=n) if n <= 60 else None
    return timedelta(hours=n) if n <= 12 else None


_COUNT = {"": 1, "a": 1, "an": 1, "one": 1, "two": 2, "couple of": 2, "three": 3, "four": 4, "five": 5, "six": 6,
          "seven": 7, "تلات": 3, "اربع": 4, "خمس": 5, "talat": 3, "arba3": 4, "5ams": 5}


def _meridiem(mer: str | None, hour: int, raw: str) -> str | None:
    if hour == 0 or hour > 12 or (len(raw) == 2 and raw.startswith("0")):
        return "24"
    if not mer:
        return None
    return "am" if mer[0] in "aص" else "pm"


def _clock(m: re.Match, n: str = "", *, loose: bool = False, around: bool = False) -> _Clock | None:
    """The time a match says, or None when nothing around the number makes it a time."""
    raw, word = m.group(f"h{n}"), m.group(f"hw{n}")
    hour = int(raw) if raw else _CLOCK.get(_key(word), -1)
    minute = int(m.group(f"m{n}")) if m.group(f"m{n}") else 0
    mer, sep = m.group(f"mer{n}"), m.group(f"sep{n}")
    frac = _FRAC.get(_key(m.group(f"frac{n}") or ""), 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59) or (frac and sep) or (mer and mer in "صم" and hour > 12):
        return None
    groups = m.groupdict()
    part = _lookup(_PART, groups["part"]) if groups.get("part") else None
    triggers = {_key(t) for t in _TRIGGER_TOKEN.findall(groups.get("trig") or "")}
    mod = None
    if groups.get("mod"):
        mod = "after" if _key(groups["mod"]) in _AFTER else "before"
    certain = bool(mer or part or frac or groups.get("oclock"))
    if word:
        # "one" is a time only with am/pm, o'clock or "at": "the second one tomorrow afternoon" is a listing.
        if _key(word) == "one" and not (mer or groups.get("oclock") or "at" in triggers):
            return None
        if not (loose or certain or triggers & _WORD_TRIGGERS):
            return None
    elif not (loose or certain or sep == ":" or triggers & _STRONG_TRIGGERS or mod
              or (around and (triggers or sep == "."))):
        return None
    return _Clock(hour, minute + frac, _meridiem(mer, hour, raw or ""), part, mod)


def _span_clock(m: re.Match) -> _Clock | None:
    """ "between 5 and 7", "من ٥ ل ٧", "5-7pm": a start and an end, when something says they are times."""
    if m.group("hw1") or m.group("hw2"):
        return None
    part = _lookup(_PART, m.group("part")) if m.group("part") else None
    if not (m.group("key") or m.group("trig") or m.group("mer1") or m.group("mer2") or part):
        return None
    first, second = _clock(m, "1", loose=True), _clock(m, "2", loose=True)
    if first is None or second is None:
        return None
    return _Clock(first.hour, first.minute, first.meridiem, part, None,
                  _Clock(second.hour, second.minute, second.meridiem, part))


# --- from what was said to a window ------------------------------------------------------------------

def _readings(clock: _Clock, part: str | None) -> list[int]:
    """Minutes after midnight, the likeliest first; two when am or pm is a guess."""
    h = clock.hour
    part = clock.part or part
    if clock.meridiem == "24":
        hours = [h]
    elif clock.meridiem == "am":
        hours = [h % 12]
    elif clock.meridiem == "pm":
        hours = [h % 12 + 12]
    elif part == "morning":
        hours = [h]
    elif part == "noon":
        hours = [h if h >= 11 else h + 12]
    elif part == "afternoon":
        hours = [12 if h == 12 else h + 12]
    elif part == "evening":
        hours = [24 if h == 12 else h + 12]
    elif h == 12:
        hours = [12]
    elif h <= 8:
        hours = [h + 12, h]
    else:
        hours = [h, h + 12]
    return [v for v in (x * 60 + clock.minute for x in hours) if v >= 0] or [0]


def _clock_window(clock: _Clock, part: str | None, choice: int = 0) -> tuple[int, int, bool]:
    """Start and end minutes of what a clock says, and whether am or pm was a guess."""
    readings = _readings(clock, part)
    start = readings[min(choice, len(readings) - 1)]
    if clock.until is not None:
        fits = [(s, e) for s in readings for e in _readings(clock.until, part) if 0 < e - s <= 12 * 60]
        if fits:
            return fits[0][0], fits[0][1], len(fits) > 1
        return start, start, len(readings) > 1
    if clock.mod == "after":
        return start, min(max(_DAY_END, start + 120), max(24 * 60, start + 60)), len(readings) > 1
    if clock.mod == "before":
        return max(0, min(_DAY_START, start - 60)), start, len(readings) > 1
    return start, start, len(readings) > 1


def _at(day: date, minutes: int, tz) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz) + timedelta(minutes=minutes)


def _next_week_start(today: date, language: str) -> date:
    first = 0 if language == "en" else 6
    return today + timedelta(days=(first - today.weekday()) % 7 or 7)


def _range(name: str, language: str, now: datetime) -> tuple[date, date, bool]:
    """First day, day after the last, and whether the reading is a guess."""
    today = now.date()
    if name == "next_week":
        start = _next_week_start(today, language)
        return start, start + timedelta(days=7), False
    if name == "this_week":
        return today, _next_week_start(today, language), False
    if name in ("this_weekend", "next_weekend"):
        first, second = (4, 5) if getattr(now.tzinfo, "key", None) in FRIDAY_WEEKEND_ZONES else (5, 6)
        in_weekend = today.weekday() in (first, second)
        coming = today - timedelta(days=(today.weekday() - first) % 7) if in_weekend else \
            today + timedelta(days=(first - today.weekday()) % 7)
        if name == "this_weekend":
            return today if in_weekend else coming, coming + timedelta(days=2), False
        week = _next_week_start(today, language)
        start = week + timedelta(days=(first - week.weekday()) % 7)
        if start <= coming:
            start = coming + timedelta(days=7)
        return start, start + timedelta(days=2), not in_weekend and start != coming
    if name in ("next_month", "this_month"):
        following = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        if name == "this_month":
            return today, following, False
        return following, date(following.year + following.month // 12, following.month % 12 + 1, 1), False
    return today, today + timedelta(days=7), False   # any_day


def _decide(said: _Said, *, now: datetime, text: str):
    """(kind, start, end, ambiguous) from what was said, or None when nothing was."""
    tz, today = now.tzinfo, now.date()
    languages: dict[str, str] = {}

    def language(hint: str | None) -> str:
        if hint:
            return hint
        if "message" not in languages:
            languages["message"] = detect_language(text)
        return languages["message"]

    parts = sorted(said.parts)
    part = parts[0][1] if parts else None
    clocks = sorted(said.clocks, key=lambda c: c[0])
    clock = clocks[0][1] if clocks else None
    ambiguous = len({p for _, p in parts}) > 1
    ambiguous |= len({_clock_window(c, part)[:2] for _, c in clocks}) > 1

    def ahead(day: date) -> bool:
        if clock:
            return _at(day, _clock_window(clock, part)[1], tz) > now
        if part:
            return _at(day, DAY_PARTS[part][1] * 60, tz) > now
        return _at(day, _DAY_END, tz) > now

    if said.moments and not said.days:
        moment = (now.astimezone(timezone.utc) + min(said.moments)[1]).astimezone(tz).replace(second=0, microsecond=0)
        return "exact", moment, moment, ambiguous

    days = sorted(said.days, key=lambda d: (d[1], d[0]))
    real_ranges = sorted(r for r in said.ranges if r[1] != "any_day")
    ranges = real_ranges or ([] if (clock or part) else sorted(said.ranges))
    day = None
    if days:
        primary = days[0]
        day, guess = _resolve(primary, now, ahead, language)
        if day is None:
            return None
        if real_ranges:
            first, stop, _ = _range(real_ranges[0][1], language(real_ranges[0][2]), now)
            if primary[2] in ("weekday", "dom"):
                fits = [first + timedelta(days=i) for i in range((stop - first).days)]
                fits = [d for d in fits if d >= today and (d.weekday() == primary[3][0] if primary[2] == "weekday"
                                                           else d.day == primary[3])]
                day, guess = (fits[0], False) if fits else (day, True)
            else:
                guess |= not first <= day < stop
        ambiguous |= guess
        ambiguous |= any(not _agrees(other, day, now, ahead, language) for other in days[1:])
        if primary[2] == "weekday" and day == today and clock is None:
            ambiguous = True
    elif ranges:
        first, stop, guess = _range(ranges[0][1], language(ranges[0][2]), now)
        return "range", _at(first, 0, tz), _at(stop, 0, tz), ambiguous or guess

    if day is not None and clock:
        s, e, guessed = _clock_window(clock, part)
        if guessed and day == today and days[0][2] == "rel" and _at(day, s, tz) <= now:
            other = _clock_window(clock, part, choice=1)
            if _at(day, other[0], tz) > now:
                s, e = other[0], other[1]
        ambiguous |= guessed
        kind, start, end = ("exact" if s == e else "part"), _at(day, s, tz), _at(day, e, tz)
    elif day is not None and part:
        kind, start, end = "part", _at(day, DAY_PARTS[part][0] * 60, tz), _at(day, DAY_PARTS[part][1] * 60, tz)
    elif day is not None:
        kind, start, end = "day", _at(day, 0, tz), _at(day + timedelta(days=1), 0, tz)
    elif clock:
        s, e, guessed = _clock_window(clock, part)
        ambiguous |= guessed
        day = today if _at(today, e, tz) > now else today + timedelta(days=1)
        kind, start, end = "time", _at(day, s, tz), _at(day, e, tz)
    elif part:
        lo, hi = DAY_PARTS[part]
        day = today if _at(today, hi * 60, tz) > now else today + timedelta(days=1)
        kind, start, end = "part", _at(day, lo * 60, tz), _at(day, hi * 60, tz)
    else:
        return None
    if (kind == "exact" and start < now) or (kind != "exact" and end <= now):
        ambiguous = True
    return kind, start, end, ambiguous


def _resolve(entry, now: datetime, ahead, language) -> tuple[date | None, bool]:
    """The date one day expression names, and whether that is a guess."""
    today = now.date()
    _, _, kind, value = entry
    if kind == "rel":
        return today + timedelta(days=value), False
    if kind == "date":
        year, month, day = value
        if year is not None:
            return (date(year, month, day) if _valid(year, month, day) else None), False
        for y in range(today.year, today.year + 9):
            if _valid(y, month, day) and date(y, month, day) >= today:
                passed = _valid(today.year, month, day) and 0 < (today - date(today.year, month, day)).days <= 31
                return date(y, month, day), passed
        return None, False
    if kind == "dom":
        y, m = today.year, today.month
        for i in range(13):
            if _valid(y, m, value):
                d = date(y, m, value)
                if d > today or (d == today and ahead(today)):
                    return d, i > 0
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return None, False
    weekday, mod, hint = value
    if mod == "next":
        week = _next_week_start(today, language(hint))
        d = week + timedelta(days=(weekday - week.weekday()) % 7)
        return d, d != today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    delta = (weekday - today.weekday()) % 7
    if delta == 0 and not ahead(today):
        delta = 7
    return today + timedelta(days=delta), False


def _valid(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _agrees(entry, day: date, now: datetime, ahead, language) -> bool:
    kind, value = entry[2], entry[3]
    if kind == "weekday":
        return day.weekday() == value[0]
    if kind == "dom":
        return day.day == value
    return _resolve(entry, now, ahead, language)[0] == day
