"""Counted nouns in Arabic replies in the number they agree with: غرفة واحدة, غرفتين, ٣ غرف, ١١ غرفة.

`agree(text)` rewrites each "N غرف", "N حمام" and "N سنين" that the listing formatting writes with a
plain plural: one takes the singular and واحد / واحدة after it, two the dual without a digit, three
to ten the plural, eleven and more the singular again. Digits stay in the script they were written in.
"""

from __future__ import annotations

import re

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")
# the noun as formatting writes it → (one, two, three to ten, eleven and more)
NOUNS = {
    "غرف": ("غرفة واحدة", "غرفتين", "غرف", "غرفة"),
    "حمام": ("حمام واحد", "حمامين", "حمامات", "حمام"),
    "سنين": ("سنة واحدة", "سنتين", "سنين", "سنة"),
}
_COUNTED = re.compile(r"(?<![\d٠-٩٬٫.,])([\d٠-٩]+) (" + "|".join(NOUNS) + r")(?![\u0600-\u06ff])")


def counted(number: str, noun: str) -> str:
    """`number` (Latin or Arabic-Indic digits) of `noun` (a key of NOUNS), as Arabic says it."""
    one, two, few, many = NOUNS[noun]
    n = int(number.translate(_DIGITS))
    if n == 1:
        return one
    if n == 2:
        return two
    return f"{number} {few if 3 <= n <= 10 else many}" if n else f"{number} {few}"


def agree(text: str) -> str:
    return _COUNTED.sub(lambda m: counted(m.group(1), m.group(2)), text)
