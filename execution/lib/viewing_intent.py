"""What a customer says about a viewing: a request to visit, to move or cancel one, a pick among offered times.

Regexes over the customer's text in English, Arabic and Arabizi (deciders for the viewing flow; the
times themselves are read by `when.py`).
"""

from __future__ import annotations

import re

from execution.lib.text import normalize

VIEW = re.compile(r"\b(viewing|view (it|the|this|that)|visit|see (it|the|this|that|[a-z]{1,6}-\d{1,6})"
                   r"|come (and )?see|show me (it|the place)|appointment)\b"
                   r"|معاين|اعاين|نعاين|اشوف(ها|ه)|نشوف(ها|ه)|زياره|ازور"
                   r"|\b(m?o?3ayn|a3ayen|n3ayen|mo3ayna|mo3aina|m3ayna|ashofha|ashoofha|nshofha|azorha)\w*", re.I)
CANCEL = re.compile(r"\bcancel\b|\b(drop|call off|forget) (the|that|my) (viewing|appointment|visit)\b"
                     r"|الغي|الغاء|مش هقدر اجي|\b(el8i|elghi|alghi)\b", re.I)
# "I won't cancel", "no need to cancel", "can I cancel later?": about cancelling, not a request to.
NOT_CANCEL = re.compile(r"\b(not|won'?t|don'?t|never|no need to|can i|could i|if i)\b[^.!?\n]{0,12}\bcancel"
                         r"|مش (هلغي|عايز الغي|هالغي)|لو (لغيت|الغيت)|ينفع الغي|\b(mesh|msh) (hal8i|3ayez al8i)\b", re.I)
MOVE = re.compile(r"\b(reschedule|postpone|move|change|push) (it|the (viewing|time|appointment|visit))\b"
                   r"|another (time|day)|\b(move|change) it to\b"
                   r"|غير الميعاد|اغير الميعاد|نغير الميعاد|ميعاد تاني|نخليها|نأجلها|نأجل|اأجل|أأجل"
                   r"|\b(a8ayar|aghayar|n8ayar|nghayar) el ma3ad\b|ma3ad tany|\b(ne2ageb|a2ageb|nkhaleeha|n5aleha)\b", re.I)
_ORDINALS = {1: r"first|1st|الاول|اول|awel|awwel", 2: r"second|2nd|التاني|tany|tani", 3: r"third|3rd|التالت|talet"}


QUESTION = re.compile(r"[?؟]")
NOT_FEEDBACK = ("more", "cheaper", "bigger", "greeting")


_ASKS_TO_VISIT = re.compile(
    r"\b(can|could|may) (i|we) (see|visit|view|come)\b|\bbook (a |the )?(viewing|visit)\b"
    r"|\b(i'?d|i would|we'?d) like to (see|visit|view)\b|\bwant to (see|visit|view)\b"
    r"|(عايز|عاوز|ممكن|اقدر|نقدر|حابب) (اعاين|نعاين|اشوف|نشوف|ازور)"
    r"|\b(momken|a2dar|n2dar|3ayez|3awez|7abeb) (a3ayen|n3ayen|ashof|ashoof|nshof|azor)\w*", re.I)


def wants_viewing(text: str) -> bool:
    """Whether the customer asks to visit, move or cancel in so many words: then the escalation examples (a
    fuzzy backstop) leave it to the viewing flow. "the viewing got cancelled AGAIN" is not a request."""
    return bool(_ASKS_TO_VISIT.search(normalize(text)) or MOVE.search(text))


def choice(text: str, count: int) -> int | None:
    """A number among the offered (1..count), as digits or an ordinal word; None otherwise."""
    folded = normalize(text).translate(str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")).strip()
    m = re.fullmatch(r"(?:(?:number|no\.?|رقم|ra2am)\s*)?(\d)\s*[.)!]?", folded, re.I)
    if m and 1 <= int(m.group(1)) <= count:
        return int(m.group(1))
    # An ordinal counts only as (nearly) the whole answer: "the second one", "التاني", not "ميعاد تاني بدري؟".
    if len(folded.split()) > 3 or "?" in folded or "؟" in folded:
        return None
    for n, words in _ORDINALS.items():
        if n <= count and re.search(rf"(^|\s)(the )?({words})( one)?\s*$", folded, re.I):
            return n
    return None
