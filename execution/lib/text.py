"""Text normalisation shared by search, extraction and the database (normalize_text in SQL)."""

from __future__ import annotations

import re

_FOLD = str.maketrans({
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",   # alef forms
    "ى": "ي",                                 # alef maqsura
    "ة": "ه",                                 # ta marbuta
    "ـ": None,                                # tatweel
    **{chr(0x0660 + d): str(d) for d in range(10)},   # Arabic-Indic digits
    **{chr(0x06F0 + d): str(d) for d in range(10)},   # Eastern Arabic-Indic (Persian) digits
})
_DIACRITICS = re.compile("[\u064b-\u0652\u0670]")


def normalize(value: str) -> str:
    """Fold the spellings customers mix up; identical to SQL normalize_text()."""
    return _DIACRITICS.sub("", value.translate(_FOLD)).lower()
