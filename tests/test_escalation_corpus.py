"""The escalation corpus (tests/data/escalation_corpus.yaml) and how well today's rules decide it.

The corpus is 164 labelled customer messages (56 English, 54 Egyptian Arabic, 54 Arabizi), half of
them needing the agent, mostly phrasings nobody tuned the rules on: offers and counter-prices,
callbacks and "are you a bot?", frustration without the word "complaint", legal questions in other
words, out-of-scope asks; and hard negatives that contain trigger-like words. Labelling policy:
tests/data/README.md.

Measured with the shipped regex rules (directives/ai_behavior/escalation_triggers.md, version 3):

    language     n  pos  TP  FN  FP  TN  recall  precision
    en          56   28   4  24   0  28    0.14       1.00
    ar          54   27   6  21   0  27    0.22       1.00
    arabizi     54   27   7  20   0  27    0.26       1.00
    overall    164   82  17  65   0  82    0.21       1.00

    recall by category: negotiation 5/22, human_request 4/18, legal 5/17, complaint 0/12,
    out_of_scope 3/13.

Version 2 misfired on seven hard negatives (precision 0.71): a lawyer in a sign-off, a discount
declined in Arabic or Arabizi, "is it furnished?", "mortgage approved"; version 3's exclusions
cover them (they were written against this corpus, so 1.00 flatters the rules: new phrasings will
find new misfires). Recall is what the next decider (examples by meaning, or the model) must raise.

What is asserted: the corpus is well formed and balanced; no message repeats a phrasing of
tests/test_check_escalation.py; the rules misfire on no hard negative (a false positive fails);
and precision stays >= 0.95. No
recall target is asserted: the next decider (examples by meaning) is to reach recall >= 0.90 at
precision >= 0.95 on this corpus.

    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/test_escalation_corpus.py
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from execution.check_escalation import check_escalation
from execution.lib.directives import load_directives
from execution.lib.text import normalize

CORPUS = Path(__file__).resolve().parent / "data" / "escalation_corpus.yaml"
LANGUAGES = ("en", "ar", "arabizi")
CATEGORIES = ("negotiation", "human_request", "legal", "complaint", "out_of_scope")
FIELDS = {"id", "language", "text", "needs_agent", "category", "note"}
MIN_PER_LANGUAGE = 45
MIN_PER_CATEGORY_AND_LANGUAGE = 3
POSITIVE_SHARE = (0.4, 0.6)          # "about half" of each language needs the agent

# Messages labelled needs_agent: false on which today's rules escalate. Listed so that a new misfire
# fails the run; remove an id when a rule or exclusion fixes it.
KNOWN_FALSE_POSITIVES: set[str] = set()     # version 2 had seven; see the module docstring


def _load() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return _load()


@pytest.fixture(scope="module")
def decisions(corpus):
    rules = load_directives()["escalation_triggers"]
    return [(entry, check_escalation(entry["text"], directive=rules)) for entry in corpus]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _figures(pairs) -> dict:
    c = Counter((entry["needs_agent"], decision.escalate) for entry, decision in pairs)
    tp, fn, fp, tn = c[(True, True)], c[(True, False)], c[(False, True)], c[(False, False)]
    return {"n": tp + fn + fp + tn, "positives": tp + fn, "tp": tp, "fn": fn, "fp": fp, "tn": tn,
            "recall": _ratio(tp, tp + fn), "precision": _ratio(tp, tp + fp)}


def measure(decisions) -> dict:
    by_language = {lang: _figures([p for p in decisions if p[0]["language"] == lang]) for lang in LANGUAGES}
    by_category = {}
    for category in CATEGORIES:
        positives = [(e, d) for e, d in decisions if e["category"] == category]
        caught = sum(d.escalate for _, d in positives)
        by_category[category] = {"caught": caught, "positives": len(positives),
                                 "recall": _ratio(caught, len(positives))}
    return {
        "by_language": by_language,
        "overall": _figures(decisions),
        "by_category": by_category,
        "missed": [e["id"] for e, d in decisions if e["needs_agent"] and not d.escalate],
        "false_positives": {e["id"]: f"{d.rule}: {d.matched!r}" for e, d in decisions
                            if not e["needs_agent"] and d.escalate},
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table(figures: dict) -> str:
    lines = [f"escalation rules on {CORPUS.relative_to(CORPUS.parents[2])}",
             f"{'language':<9} {'n':>4} {'pos':>4} {'TP':>3} {'FN':>3} {'FP':>3} {'TN':>3} {'recall':>7} {'precision':>10}"]
    rows = [*figures["by_language"].items(), ("overall", figures["overall"])]
    for name, f in rows:
        lines.append(f"{name:<9} {f['n']:>4} {f['positives']:>4} {f['tp']:>3} {f['fn']:>3} {f['fp']:>3} "
                     f"{f['tn']:>3} {_fmt(f['recall']):>7} {_fmt(f['precision']):>10}")
    lines.append("recall by category: " + ", ".join(
        f"{c} {v['caught']}/{v['positives']}" for c, v in figures["by_category"].items()))
    lines.append("false positives: " + (", ".join(f"{i} ({why})" for i, why in figures["false_positives"].items())
                                        or "none"))
    return "\n".join(lines)


# ------------------------------------------------------------------------------ the corpus itself

def test_every_entry_has_the_schema(corpus):
    assert isinstance(corpus, list) and corpus
    problems = []
    for i, entry in enumerate(corpus):
        where = entry.get("id", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        if not isinstance(entry, dict) or set(entry) != FIELDS:
            problems.append(f"{where}: fields must be exactly {sorted(FIELDS)}")
            continue
        if not (isinstance(entry["id"], str) and entry["id"].strip()):
            problems.append(f"{where}: id must be a non-empty string")
        if entry["language"] not in LANGUAGES:
            problems.append(f"{where}: language must be one of {LANGUAGES}")
        if not (isinstance(entry["text"], str) and entry["text"].strip()):
            problems.append(f"{where}: text must be a non-empty string")
        if not (isinstance(entry["note"], str) and entry["note"].strip()):
            problems.append(f"{where}: note must say why")
        if not isinstance(entry["needs_agent"], bool):
            problems.append(f"{where}: needs_agent must be true or false")
        elif entry["needs_agent"] and entry["category"] not in CATEGORIES:
            problems.append(f"{where}: a message that needs the agent has a category in {CATEGORIES}")
        elif not entry["needs_agent"] and entry["category"] is not None:
            problems.append(f"{where}: a message that does not need the agent has category null")
    assert not problems, "\n".join(problems)


def test_ids_and_texts_are_unique(corpus):
    ids = Counter(e["id"] for e in corpus)
    texts = Counter(normalize(e["text"]).strip() for e in corpus)
    assert not [i for i, n in ids.items() if n > 1], "duplicate ids"
    assert not [t for t, n in texts.items() if n > 1], "duplicate texts"


def test_each_language_has_enough_messages_about_half_of_them_needing_the_agent(corpus):
    for language in LANGUAGES:
        entries = [e for e in corpus if e["language"] == language]
        assert len(entries) >= MIN_PER_LANGUAGE, (language, len(entries))
        share = sum(e["needs_agent"] for e in entries) / len(entries)
        assert POSITIVE_SHARE[0] <= share <= POSITIVE_SHARE[1], (language, share)


def test_positives_are_spread_over_every_category_in_every_language(corpus):
    counts = Counter((e["language"], e["category"]) for e in corpus if e["needs_agent"])
    thin = {(lang, c): counts[(lang, c)] for lang in LANGUAGES for c in CATEGORIES
            if counts[(lang, c)] < MIN_PER_CATEGORY_AND_LANGUAGE}
    assert not thin, f"fewer than {MIN_PER_CATEGORY_AND_LANGUAGE} positives: {thin}"


def test_the_corpus_does_not_repeat_the_phrasings_the_rules_were_tuned_on(corpus):
    from tests.test_check_escalation import ESCALATE, STAY

    tuned = {normalize(t).strip() for t in [*(e[0] for e in ESCALATE), *STAY]}
    repeated = [e["id"] for e in corpus if normalize(e["text"]).strip() in tuned]
    assert not repeated, f"tuning phrasings repeated: {repeated}"


# ------------------------------------------------------------------------------ today's rules on it

def test_measure_the_rules(decisions, record_property):
    figures = measure(decisions)
    print("\n" + table(figures))
    record_property("escalation_corpus", json.dumps(figures, ensure_ascii=False))
    # The categories the rules give agree with the labels whenever they do escalate a positive.
    wrong_category = [(e["id"], e["category"], d.category) for e, d in decisions
                      if e["needs_agent"] and d.escalate and d.category != e["category"]]
    assert not wrong_category, wrong_category


def test_the_rules_misfire_on_no_message_beyond_the_known_ones(decisions):
    false_positives = {e["id"]: (e["text"], d.why) for e, d in decisions if not e["needs_agent"] and d.escalate}
    new = {i: v for i, v in false_positives.items() if i not in KNOWN_FALSE_POSITIVES}
    assert not new, f"new false positives: {new}"


def test_precision_does_not_fall_below_todays(decisions):
    """The target with an examples-by-meaning decider is recall >= 0.90 at precision >= 0.95."""
    precision = measure(decisions)["overall"]["precision"]
    assert precision is not None and precision >= 0.95, table(measure(decisions))