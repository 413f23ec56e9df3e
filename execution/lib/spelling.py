"""Typos and spelling variants: the vocabulary word a misspelt token stands for, never another real word.

`nearest(token, forms)` returns the value of the one form within reach of `token`, or None. Reach
depends on length: nothing under four letters is corrected ("for" is never "four", "flat" never
"flag"), a four-letter token only when it is a form with one doubled letter written once ("vila",
"madi"), five letters and more one edit (a letter added, dropped, replaced, or two swapped), nine
and more two. The first letter must agree. In Arabic script a replaced letter must be one customers
confuse (س/ص, ت/ط, ز/ذ/ظ, ح/ه, ق/ك, ع/ا/ء, or the same shape with other dots: ب/ت/ن/ي, ج/ح/خ …), so
"العاصفه" never becomes "العاصمه"; an
article or a glued preposition does not count towards the length ("العادي" is not "المعادي"). A
token that is itself a common English word (`PROTECTED`) or a word of the vocabulary is never
corrected. All input is `text.normalize()`d.
"""

from __future__ import annotations

import re
from typing import Collection, Mapping, TypeVar

V = TypeVar("V")

_ARABIC = re.compile(r"[\u0600-\u06ff]")
_ARTICLE = re.compile(r"^(?:[وفبلك]{0,2}ال|لل)(?=..)")
# Arabic letters customers write for one another (by sound, or the same shape with other dots); a
# replacement between any other pair is not a typo.
_CONFUSABLE = [set("سص"), set("تطث"), set("زذظ"), set("ضدظ"), set("حه"), set("قكء"), set("عاءئؤ"), set("يئ"),
               set("وؤ"), set("غج"), set("بتثني"), set("جحخ"), set("رز"), set("سش"), set("صض"), set("عغ"), set("فق")]
# English words within reach of a property type, a number word, a bedroom word or a shipped area name
# (checked against a word list): real words, so never read as a typo.
PROTECTED = frozenset("""
    beads bends chaplet chaplets feats fells fiats fiver fives flags flaps flaws flays flits float floats flour
    frats mahdi roams roods roofs rooks roomy roots semen septa sever severn steven shaka shale shana
    studies studious there threw throe tyree vilma viola violas waded waged waked waled waned washed waved waxed
""".split())


def _core(word: str) -> str:
    return _ARTICLE.sub("", word) if _ARABIC.search(word) else word


def _substitutable(a: str, b: str) -> bool:
    if not (_ARABIC.match(a) or _ARABIC.match(b)):
        return True
    return any(a in group and b in group for group in _CONFUSABLE)


def edits(a: str, b: str, limit: int) -> int:
    """Edits from a to b (insert, delete, replace, swap two neighbours), or limit + 1 once past limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            same = a[i - 1] == b[j - 1]
            replace = prev[j - 1] + (0 if same else 1 if _substitutable(a[i - 1], b[j - 1]) else limit + 1)
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, replace)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _collapsed(form: str) -> set[str]:
    """The form with one of its doubled letters written once: villa -> vila, maadi -> madi."""
    return {form[:i] + form[i + 1:] for i in range(1, len(form)) if form[i] == form[i - 1]}


def reach(token: str, form: str) -> int:
    """How many edits may separate `token` from `form` for one to stand for the other."""
    core, form_core = _core(token), _core(form)
    if not core or not form_core or core[0] != form_core[0]:
        return 0
    shortest = min(len(core), len(form_core))
    if shortest >= 9:
        return 2
    if shortest >= 5:
        return 1
    # Four letters: a letter added ("flatt"); in Arabic script also one dropped ("زملك"), never replaced.
    arabic = bool(_ARABIC.search(core))
    return 1 if shortest == 4 and (len(core) == 5 or (arabic and len(form_core) == 5)) else 0


def stands_for(token: str, form: str) -> bool:
    """Whether `token` is a misspelling of `form` (never true of the form itself)."""
    if token == form or token in PROTECTED:
        return False
    limit = reach(token, form)
    if limit == 0:
        return len(token) == 4 and token in _collapsed(form)
    return edits(_core(token), _core(form), limit) <= limit


def nearest(token: str, forms: Mapping[str, V], *, known: Collection[str] = ()) -> V | None:
    """The value of the one form `token` misspells; None when none does, it is a known word, or two
    forms with different values are equally near."""
    if token in forms or token in PROTECTED or token in known:
        return None
    best: dict[int, set] = {}
    for form, value in forms.items():
        if stands_for(token, form):
            limit = max(1, reach(token, form))
            best.setdefault(edits(_core(token), _core(form), limit), set()).add(value)
    if not best:
        return None
    values = best[min(best)]
    return next(iter(values)) if len(values) == 1 else None
