"""Where a conversation stands: the listings shown (in order), the one in focus, what was asked last.

Nothing is stored for it: the state is read back from the assistant's and the agent's latest
messages. Their text names listings by reference in the order shown (so a model's reply or an agent's
own message counts too), and an offline reply also records `generation.state` (shown, focus,
asked). `detect_intent(text)` says what a customer message wants, in English, Egyptian Arabic or
Arabizi; `resolve_listing(conn, conversation=…, text=…, agent_id=…)` says which listing it means:
"it", "this one", "the second", "the cheaper one", "the one in Maadi", "NH-0033".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from execution.lib import property_store
from execution.lib.criteria import detect_language, extract, find_areas
from execution.lib.db import Connection
from execution.lib.property_store import Alias
from execution.lib.text import normalize

RECENT_MESSAGES = 20
_REFERENCE = re.compile(r"(?<![\w-])([A-Za-z]{1,5}-\d{1,8})(?![\w-])")

# --- what a message wants: (intent, pattern over normalised text), the first that matches wins -----------

_A = r"(?<![\u0600-\u06ff])(?:[وفبل]|ال|وال|بال|فال)?"      # an Arabic word's start, with its clitics
QUESTIONS = ("payment_plan", "delivery", "amenities", "location", "photos", "availability", "price", "size")
_INTENTS = [
    ("photos", r"\b(photos?|pictures?|pics?|images?|sowar|sewar|suwar|sora)\b|" + _A + r"صور(ه|ها)?\b"),
    ("viewing", r"\bviewings?\b|\bvisit\b|\btour\b|\binspect\w*|\b(see|view) (it|this|that|the (one|flat|apartment|"
                r"villa|place|property|unit|house|chalet|duplex|studio))\b|\bcome (and|to) see\b|معاين|اعاين|نعاين|"
                r"(اشوف|نشوف|ازور|نزور)(ها|ه)\b|(اشوف|نشوف) (الشقه|الوحده|الفيلا|المكان)|زياره|"
                r"\b(a3ayen|n3ayen|m3ayn\w*|mo3ayn\w*|m3ayen\w*|a?sh?o+[uf]ha|asoufha|nshofha|az+o+rha|"
                r"zi?yara)\b"),
    ("payment_plan", r"payment plan|install?ments?|down ?payment|مقدم|تقسيط|اقساط|قسط|نظام السداد|"
                     r"ta2seet|taseet|a2sat|mo2adam|m2adam|nezam el sadad"),
    ("delivery", r"delivery|handover|hand over|when .*ready|ready to move|استلام|تسليم|امتي .*جاهز|esta?lam|"
                 r"taslee?m"),
    ("amenities", r"amenit|facilit|features|services|مميزات|خدمات|فيها ايه|momayezat|khadamat|fiha eh"),
    ("location", r"\blocated\b|\bwhere(?: is|'s| exactly)?(?: it| this| that| the (?:one|flat|apartment|villa|unit|"
                 r"place|property))?\s*\??$|\blocation\b|\baddress\b|\bwhere exactly\b|\bwhich (area|district|part)\b|"
                 r"فين|مكانها|مكانه|العنوان|عنوانها|اللوكيشن|لوكيشن|موقعها|\b(feen|fein|fen|makanha|"
                 r"el makan|3enwan\w*|3onwan\w*|lokeshn)\b"),
    ("availability", r"\bavailable\b|\bstill (there|on the market|for sale|for rent|free)\b|\b(is it|is this|"
                     r"is that|has it been|was it) (sold|taken|reserved|booked)\b|متاح|لسه موجود|لسه فاضي|اتباعت|"
                     r"اتحجزت|محجوز|\b(mota7a?|lessa mawgood\w*|mawgoo?da lessa|etba3et|et7agazet|ma7gooz\w*|"
                     r"fadya)\b"),
    ("price", r"\bhow much\b|\bprice\b|\bcost\b|بكام|سعرها|سعره|السعر|تمنها|تمنه|\b(bkam|bekam|b ?kam|se3rha|"
              r"se3ro|el se3r|tamanha)\b"),
    ("size", r"\bhow big\b|\bsize\b|\bhow many (meters|metres|square)|مساحتها|مساحته|المساحه|كام متر|"
             r"\b(mesa7etha|mesa7to|mesa7a|masa7a|kam metr|kam meter)\b"),
]
_ART = r"(?<![\u0600-\u06ff])[وفب]?(?:ال|لل)"                  # the Arabic article, with a clitic
_NOT_A_CHOICE = r"(?! (?:floor|time|phase|stage|hand|home|row|payment|installment))"


def _ordinal(en: str, ar: str, arabizi: str, n: int) -> str:
    return (rf"\bthe (?:{en})(?: (?:one|option|listing|property|unit|flat|apartment|villa))?\b{_NOT_A_CHOICE}|"
            rf"\b(?:{en}) (?:one|option|listing)\b|(?:\b(?:number|option)|#|\bno\.) ?{n}\b|"
            rf"{_ART}(?:{ar})\b|(?<![\u0600-\u06ff])(?:{ar}) (?:واحده|وحده|شقه|فيلا)\b|رقم ?{n}\b|"
            rf"\bel (?:{arabizi})\b|\br[ae]?[kq]am ?{n}\b")


_ORDINALS = {
    1: _ordinal("first|1st", "اول|اولي|اولاني|اولانيه", "awel|awela|ola|awelaneya|awlaneya", 1),
    2: _ordinal("second|2nd", "تاني|تانيه|ثاني|ثانيه", "tany|tanya|tanyeh|tania|tanye", 2),
    3: _ordinal("third|3rd", "تالت|تالته|ثالث|ثالثه", "talet|talta|taleta|talt", 3),
    4: _ordinal("fourth|4th", "رابع|رابعه", "rabe3|rab3a", 4),
    5: _ordinal("fifth|5th", "خامس|خامسه", "khames|5ames|khamsa", 5),
    -1: rf"\bthe last(?: one)?\b{_NOT_A_CHOICE}|{_ART}(?:اخير|اخيره)\b|\bel (?:akher|a5er|akhera|a5era)\b",
}
# Among the listings shown: (price or area_sqm, smallest first?) for "the cheaper one", "الاكبر" …
_SUPERLATIVES = {
    ("price", True): r"\bthe (cheaper|cheapest|least expensive|lower priced)\b|\bcheapest\b|"
                     r"ال(ارخص)\b|اللي ارخص|ارخص واحده|\b(el|elly|elli) (ar5as|arkhas)\b",
    ("price", False): r"\bthe (more|most) expensive\b|\bthe (pricier|priciest)\b|الاغلي\b|اللي اغلي|"
                      r"\b(el|elly|elli) (aghla|a8la)\b",
    ("area_sqm", False): r"\bthe (bigger|biggest|larger|largest|more spacious)\b|\b(biggest|largest) one\b|"
                         r"الاكبر\b|الاوسع\b|اللي اكبر|اللي اوسع|اكبر واحده|\b(el|elly|elli) (akbar|awsa3)\b",
    ("area_sqm", True): r"\bthe (smaller|smallest)\b|\bsmallest one\b|الاصغر\b|اللي اصغر|"
                        r"\b(el|elly|elli) (asghar|as8ar)\b",
}
_MORE = (r"\b(more|other|another|different) (options?|listings?|ones|properties|units|choices|results|places)\b|"
         r"\banything else\b|\bwhat else\b|\bwhat (?:else )?(?:do|did) you (?:have|got)\b|عندك(م)? ايه|"
         r"\b3and(ak|ek|ko) eh\b|\b(show|send) (me )?more\b|\bsee more\b|\bany more\b|\bsomething else\b|"
         r"\bnext (page|ones?)\b|(اختيارات|حاجه|حاجات|وحدات|شقق) (تانيه|تاني|اخري)|غيرهم|غير دول|غيرها|في تاني|"
         r"كمان اختيارات|ابعت كمان|\b(ekhtyarat|7aga|haga|7agat|wehdat) (tanya|tany|tania)\b|\bgh?[ae]?[iy]?rhom\b|"
         r"\bgh?e?[iy]?r dol\b|\bfi tany\b|\bkaman ekhtyarat\b")
_CHEAPER = (r"\bcheaper\b|\bless expensive\b|\blower (price|budget)\b|\bmore affordable\b|\bless money\b|"
            r"ارخص|اقل سعر|سعر اقل|\b(ar5as|arkhas|ar7as|as3ar a2al|se3r a2al)\b")
_BIGGER = (r"\bbigger\b|\blarger\b|\bmore (space|spacious|bedrooms|rooms)\b|\bmore room\b|اكبر|اوسع|"
           r"\b(akbar|awsa3|mesa7a akbar)\b")
# "the one in Maadi", "the 3 bedroom one", "اللي في المعادي", "elly fel maadi": choose among those shown.
_SELECTOR = (r"\bthe\b[\w\s-]{0,30}\bone\b|\b(this|that) (one|flat|apartment|villa|unit|listing|place)\b|"
             r"\bone (in|at|with|on)\b|(?<![\u0600-\u06ff])(اللي|الي|دي|ده|دا)(?![\u0600-\u06ff])|"
             r"\b(elly|elli|ely|illi|di|dy|deh|da)\b")
_DETAILS = (r"\b(this|that) one\b|^\W*(دي|ده|الوحده دي|الشقه دي|di|dy|deh|de)\W*$|\bdetails?\b|"
            r"\btell me (more )?about\b|\bmore (info|information|details)\b|\binfo\b|تفاصيل|اعرف عنها|"
            r"\b(tafaseel\w*|tafasil\w*)\b")
_FOLLOW_UP = r"^\W*(and|what about|how about|same for|و|طب|طيب|w|we|wel|wl|tab|tayeb)(?![^\W\d_])"

_HELLO = {"hi", "hello", "hey", "hiya", "morning", "evening", "afternoon", "salam", "ahlan", "marhaba", "hala",
          "ezayak", "ezayek", "izayak", "sabah", "masa2", "السلام", "اهلا", "ازيك", "ازيكم", "مرحبا", "صباح", "مساء",
          "هاي", "هلو"}
_GREETING = {"hi", "hello", "hey", "hiya", "good", "morning", "evening", "afternoon", "again", "there", "salam",
             "alaikum", "alaykum", "3alekom", "3aleikom", "aleikum", "ahlan", "ahln", "marhaba", "hala",
             "ezayak", "ezayek", "izayak", "sabah", "el", "khair", "kheir", "5eir", "masa2", "السلام", "عليكم",
             "اهلا", "ازيك", "ازيكم", "مرحبا", "صباح", "مساء", "الخير", "النور", "هاي", "هلو", "تاني", "ya", "يا"}
_THANKS = {"thanks", "thank", "thx", "ty", "appreciate", "appreciated", "shokran", "shukran", "merci", "mersi",
           "tslam", "teslam", "mashkoor", "متشكر", "متشكره", "شكرا", "تسلم", "تسلمي", "مشكور", "ميرسي"}
_BYE = {"bye", "goodbye", "later", "cya", "ciao", "salam", "salamo", "سلام", "السلامه", "salama", "soon", "tesba7",
        "تصبح", "night"}
_OK = {"ok", "okay", "okey", "k", "kk", "fine", "great", "cool", "perfect", "good", "nice", "alright", "sure",
       "noted", "got", "it", "understood", "tamam", "mashy", "mashi", "tayeb", "7elw", "helw", "gamil", "sa7",
       "تمام", "ماشي", "اوكي", "اوك", "طيب", "حلو", "جميل", "فهمت", "عظيم", "تمم"}
# Words that may come with a closing and change nothing: "thanks a lot for your help", "ok I'll think".
_SOFT = {"a", "lot", "so", "very", "much", "you", "for", "the", "help", "your", "and", "all", "ya", "gedan",
         "awy", "2awy", "kteer", "geddan", "جدا", "اوي", "قوي", "كتير", "ليك", "ليكي", "على", "المساعده", "و",
         "w", "we", "then", "now", "will", "think", "let", "me", "i", "ll", "ha", "hafakar", "هفكر", "هشوف",
         "hashoof", "talk", "to", "bokra", "بكره", "الله", "allah", "insha2allah", "inshallah", "مع", "ma3a", "el",
         "yalla", "يلا", "see", "نهارك", "سعيد", "have", "day"}
_QUESTION = (r"\?|؟|^\W*(what|how|is|are|does|do|can|could|will|would|when|where|why|which|who|any)\b|"
             r"(?<![\u0600-\u06ff])(هل|ايه|امتي|ازاي|ليه|مين|كام|فين|بكام)(?![\u0600-\u06ff])|"
             r"\b(hal|eh|emta|ezay|leh|meen|kam|feen|fih|feeh)\b")


@dataclass(frozen=True)
class State:
    shown: tuple[str, ...] = ()      # the latest list the customer was shown, in order
    focus: str | None = None         # the listing being talked about
    asked: str | None = None         # the last question asked about a listing (one of QUESTIONS)
    language: str | None = None      # the language the assistant last answered in
    seen: tuple[str, ...] = ()       # every listing named in the recent messages, latest first
    replied: bool = False            # the assistant or the agent has written before

    def to_json(self) -> dict:
        return {"shown": list(self.shown), "focus": self.focus, "asked": self.asked, "language": self.language}


def _words(folded: str) -> list[str]:
    return re.findall(r"[^\W_]+", folded)


def _only(words: list[str], *vocab: set[str]) -> bool:
    allowed = set().union(*vocab)
    return bool(words) and all(w in allowed for w in words)


def is_question(text: str) -> bool:
    """A question mark, or a question word ("does it …", "هل", "feeh")."""
    return bool(re.search(_QUESTION, normalize(text)))


def detect_intent(text: str, *, aliases: Iterable[Alias] = ()) -> str:
    """What a message wants: viewing, a question about a listing (QUESTIONS), details, more, cheaper,
    bigger, search, greeting, thanks, ok, bye, unknown (a question with no answer here) or other."""
    folded = normalize(text)
    places, rest = find_areas(folded, aliases)          # "5th Settlement" is a place, not "the fifth"
    for intent, pattern in _INTENTS:
        if re.search(pattern, rest):
            return intent
    # "the one in Maadi" picks a listing shown; "عايز حاجة في المعادي اللي فيها جنينة" is a new search.
    if _choice(rest) or _REFERENCE.search(rest) or re.search(_DETAILS, rest) or (
            re.search(_SELECTOR, rest) and len(_words(folded)) <= 6 and (places or _criteria_named(text, aliases))):
        return "details"
    for intent, pattern in (("more", _MORE), ("cheaper", _CHEAPER), ("bigger", _BIGGER)):
        if re.search(pattern, rest):
            return intent
    said = extract(text, aliases=aliases)
    if said.to_json().keys() - {"language"}:
        return "search"
    words = _words(folded)
    if _only(words, _GREETING) and set(words) & _HELLO:
        return "greeting"
    unknown = [w for w in words if w not in _THANKS | _BYE | _OK | _SOFT]
    closing = [w for w in words if w in _THANKS | _BYE | _OK]
    if closing and len(unknown) <= (1 if len(words) > 1 else 0) and not re.search(r"\?|؟", folded):
        return "bye" if set(words) & _BYE else "thanks" if set(words) & _THANKS else "ok"
    if not words and not re.search(r"\?|؟", folded):
        return "ok"                                        # an emoji, a thumbs-up
    if re.search(_QUESTION, folded):
        return "unknown"
    return "other"


def _criteria_named(text: str, aliases: Iterable[Alias]) -> bool:
    said = extract(text, aliases=aliases)
    return bool(said.property_types or said.areas or said.bedrooms_min is not None)


def _choice(rest: str) -> tuple[str, object] | None:
    """("ordinal", n) or ("superlative", (field, smallest first)) named in the text, if any."""
    for key, pattern in _SUPERLATIVES.items():
        if re.search(pattern, rest):
            return "superlative", key
    for n, pattern in _ORDINALS.items():
        if re.search(pattern, rest):
            return "ordinal", n
    return None


def is_follow_up(text: str) -> bool:
    """'and the second one?', 'طب والتانية؟', 'w el tanya?': the same question about another listing."""
    return bool(re.search(_FOLLOW_UP, normalize(text)))


# --- the state, read back from the messages --------------------------------------------------------------

def references_in(body: str | None) -> tuple[str, ...]:
    """The listing references a message names, in order, each once."""
    return tuple(dict.fromkeys(m.group(1).upper() for m in _REFERENCE.finditer(body or "")))


def load_state(conn: Connection, *, conversation_id: int) -> State:
    """The state after the latest messages of the assistant and the agent (suppressed drafts never count)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT body, generation FROM messages
             WHERE conversation_id = %s AND author IN ('ai', 'agent') AND coalesce(delivery_status, '') <> 'suppressed'
             ORDER BY id DESC LIMIT %s
            """,
            (conversation_id, RECENT_MESSAGES),
        )
        rows = cur.fetchall()
    seen: list[str] = []
    state: State | None = None
    for row in rows:
        refs = references_in(row["body"])
        seen += [r for r in refs if r not in seen]
        recorded = (row["generation"] or {}).get("state")
        if state is None and recorded:
            state = State(tuple(recorded.get("shown") or ()), recorded.get("focus"), recorded.get("asked"),
                          recorded.get("language"))
        elif state is None and refs:
            state = State(refs, refs[0] if len(refs) == 1 else None)
    state = state or State()
    return State(state.shown, state.focus, state.asked, state.language, tuple(seen), bool(rows))


def language_of(text: str, *, previous: str | None) -> str:
    """The customer's language. A few Latin words read as English ("w el talta?", "ok") keep the conversation's
    Arabic or Arabizi: too short to tell."""
    lang = detect_language(text)
    if lang == "en" and previous in ("ar", "arabizi") and len(_words(_REFERENCE.sub(" ", normalize(text)))) <= 3:
        return previous
    return lang


# --- which listing a message means ------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolution:
    listing: dict | None
    how: str            # reference | unknown_reference | ordinal | superlative | criteria | focus | none


def resolve(conn: Connection, *, state: State, text: str, agent_id: int, aliases: Iterable[Alias] = ()) -> Resolution:
    """The listing `text` means: a reference (any of the agent's), else one of those shown, else the focus."""
    folded = normalize(text)
    places, rest = find_areas(folded, aliases)
    ref = _REFERENCE.search(rest)
    if ref:
        row = property_store.get_property(conn, agent_id=agent_id, reference=ref.group(1).upper())
        return Resolution(row, "reference" if row else "unknown_reference")
    choice, said = _choice(rest), extract(text, aliases=aliases)
    named = places or said.property_types or said.bedrooms_min is not None
    shown = property_store.get_properties(conn, agent_id=agent_id, references=state.shown) if choice or named else []
    if choice and shown:
        kind, value = choice
        if kind == "ordinal":
            index = value - 1 if value > 0 else len(shown) - 1
            return Resolution(shown[index] if index < len(shown) else None, "ordinal")
        field, smallest = value
        ranked = sorted((r for r in shown if r.get(field) is not None), key=lambda r: r[field],
                        reverse=not smallest)
        return Resolution(ranked[0] if ranked else None, "superlative")
    if shown and named:
        area_ids = {a.area_id for a in places}
        matches = [r for r in shown
                   if (not area_ids or r.get("area_id") in area_ids)
                   and (not said.property_types or r["property_type"] in said.property_types)
                   and (said.bedrooms_min is None or r.get("bedrooms") == said.bedrooms_min)]
        if matches:
            return Resolution(matches[0], "criteria")
    focus = state.focus or (state.shown[0] if len(state.shown) == 1 else None)
    if focus:
        row = property_store.get_property(conn, agent_id=agent_id, reference=focus)
        if row:
            return Resolution(row, "focus")
    return Resolution(None, "none")


def resolve_listing(conn: Connection, *, conversation: dict, text: str, agent_id: int) -> dict | None:
    """The listing the customer means, from the ones shown or a reference, or None."""
    aliases = property_store.load_aliases(conn, organization_id=conversation.get("organization_id"))
    state = load_state(conn, conversation_id=conversation["id"])
    return resolve(conn, state=state, text=text, agent_id=agent_id, aliases=aliases).listing

