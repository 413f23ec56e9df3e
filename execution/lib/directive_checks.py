"""Schema checks for directive front matter: each takes (value, where) and returns (field, reason) pairs."""

from __future__ import annotations

import re
from typing import Any, Callable

LANGUAGES = ("en", "ar", "arabizi")

Check = Callable[[Any, str], list[tuple[str, str]]]


def integer(low: int | None = None, high: int | None = None, *, nullable: bool = False) -> Check:
    def check(v, where):
        if v is None and nullable:
            return []
        if not isinstance(v, int) or isinstance(v, bool):
            return [(where, f"must be a whole number, got {type(v).__name__}")]
        if (low is not None and v < low) or (high is not None and v > high):
            return [(where, f"must be between {low} and {high}, got {v}")]
        return []
    return check


def number(low: float, high: float) -> Check:
    def check(v, where):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return [(where, f"must be a number, got {type(v).__name__}")]
        return [] if low <= v <= high else [(where, f"must be between {low} and {high}, got {v}")]
    return check


def boolean(v, where):
    return [] if isinstance(v, bool) else [(where, f"must be true or false, got {v!r}")]


def text(v, where):
    return [] if isinstance(v, str) and v.strip() else [(where, "must be non-empty text")]


def one_of(*allowed: str) -> Check:
    def check(v, where):
        return [] if v in allowed else [(where, f"must be one of {', '.join(allowed)}; got {v!r}")]
    return check


def list_of(item: Check, *, min_items: int = 0) -> Check:
    def check(v, where):
        if not isinstance(v, list):
            return [(where, f"must be a list, got {type(v).__name__}")]
        if len(v) < min_items:
            return [(where, f"must have at least {min_items} item(s)")]
        return [p for i, x in enumerate(v) for p in item(x, f"{where}[{i}]")]
    return check


def regex(v, where):
    if not isinstance(v, str) or not v:
        return [(where, "must be a non-empty regular expression")]
    try:
        compiled = re.compile(v)
    except re.error as exc:
        return [(where, f"does not compile: {exc}")]
    # A pattern that matches nothing at all ("(|discount)", "a*") matches every message: an empty
    # alternative is a typo, never what a rule means.
    if any(m.group(0) == "" for probe in _PROBES for m in compiled.finditer(probe)):
        return [(where, "matches an empty text, so it would match every message (an empty alternative such as "
                        "'(|' or '||', or every part optional); remove it")]
    return []


_PROBES = ("", "ok", "hello there", "2", "مرحبا يا فندم", "؟")


def mapping(fields: dict[str, Check], *, optional: tuple[str, ...] = ()) -> Check:
    """A dict with exactly these keys (those in `optional` may be left out); unknown keys refused."""
    def check(v, where):
        if not isinstance(v, dict):
            return [(where, f"must be a mapping, got {type(v).__name__}")]
        out = [(f"{where}.{k}" if where else k, "unknown key") for k in v if k not in fields]
        for k, sub in fields.items():
            name = f"{where}.{k}" if where else k
            if k not in v:
                if k not in optional:
                    out.append((name, "is required"))
                continue
            out += sub(v[k], name)
        return out
    return check


GENDERED = ("ar_female", "arabizi_female")   # optional wording for a female agent; the plain key otherwise


def per_language(item: Check, *, gendered: bool = False) -> Check:
    """One text per language; with `gendered`, optional female-agent variants of the Arabic ones."""
    if not gendered:
        return mapping({lang: item for lang in LANGUAGES})
    return mapping({**{lang: item for lang in LANGUAGES}, **{g: item for g in GENDERED}}, optional=GENDERED)


def keyed(item: Check, *, keys: tuple[str, ...] | None = None) -> Check:
    """A dict of name → item; with `keys`, exactly those names."""
    def check(v, where):
        if not isinstance(v, dict) or not v:
            return [(where, "must be a non-empty mapping")]
        out = []
        if keys is not None:
            out += [(f"{where}.{k}", "unknown key") for k in v if k not in keys]
            out += [(f"{where}.{k}", "is required") for k in keys if k not in v]
        return out + [p for k, x in v.items() if keys is None or k in keys for p in item(x, f"{where}.{k}")]
    return check


def directive(optional: tuple[str, ...] = (), **fields: Check) -> Check:
    """The schema of one directive id: the common keys (id, version, governs) plus its own."""
    return mapping({"id": text, "version": integer(1), "governs": list_of(text, min_items=1), **fields},
                   optional=optional)


