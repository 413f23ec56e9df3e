"""The escalation corpus and holdouts, and how well the rules and the examples decide them.

tests/data/escalation_corpus.yaml is 164 labelled customer messages (56 English, 54 Egyptian
Arabic, 54 Arabizi), half of them needing the agent, mostly phrasings nobody tuned the rules on:
offers and counter-prices, callbacks and "are you a bot?", frustration without the word
"complaint", legal questions in other words, out-of-scope asks; and hard negatives that contain
trigger-like words. tests/data/escalation_holdout.yaml is 72 more (24 per language, half needing
the agent), written after the directive's examples were frozen and never used to choose them.
Labelling policy: tests/data/README.md.

Measured with directives/ai_behavior/escalation_triggers.md version 14 (1,062 examples, 588
non-examples; margin 0.2, min_similarity 0.3). The examples decider is a classifier trained on the
examples and non-examples, on sentence vectors beside character n-grams of the spelling and of the
consonant skeleton, with references and figures left out of the n-grams and nothing under two words
judged by likeness (execution/lib/meaning.py). Recall / precision, patterns + examples:

    set (messages)        version 10      version 12     version 14    how it was written
    corpus (164)          0.82 / 1.00     0.94 / 1.00    0.94 / 1.00   by hand, before the examples
    holdout (72)          0.81 / 0.81     0.86 / 0.89    0.86 / 0.89   after version 4, never used to choose
    holdout2 (90)         0.89 / 0.82*    0.87 / 0.93    0.91 / 0.93   blind to the examples
    holdout3 (108)        0.83 / 0.76*    0.83 / 0.98    0.87 / 0.98   blind to the examples
    holdout4 (108)        —               0.78 / 0.79    0.85 / 0.87   blind; read with version 11
    holdout5 (105)        —               0.72 / 0.85    0.91 / 0.96   blind; its errors read to write 13
    holdout6 (103)        —               0.85 / 0.88    0.94 / 0.94   blind; never read (see below)

    (* before version 11's exclusions and margin, with its blind examples.) Patterns alone: corpus
    0.21 / 1.00 (version 12), 0.24 / 1.00 (version 14); holdout6 0.34 / 0.78 → 0.43 / 0.92.

Version 11 added 219 examples and 75 non-examples written blind to every test set from the labelling
policy (the idioms the old examples lacked: "آخرها كام", "ra3eeny", "wiggle room", bank lending in
Arabic, registration and power of attorney in Arabizi, curt frustration with emojis), then 16
non-examples for cancelled visits and holiday greetings, margin 0.2 (0.15 escalated "I'd rather not
go anymore"; 0.2 keeps every set's figures, 0.25 loses corpus recall), and exclusions for trigger
words that are declined or done ("no need for any discount", "لا شكوى", "mafish ay shakwa", "my
lawyer already went through it", "no need to call me", "is it furnished"), which now excuse only the
words they cover. Those exclusions were written after the false alarms of holdout, holdout2 and
holdout3 had been read, so the precision on those three is no longer a blind figure; holdout4 is.
On holdout4 10 of the 11 false alarms are the rules' (a trigger word in passing: "my brother is a
lawyer", "my rental contract ends in March", "the agent called me yesterday", "the neighbours filed
a complaint about the noise") and 12 needs are missed, mostly long stories of a bad visit or a
wasted trip without a complaint word, and requests for a named person's mobile.

Version 12 is version 11 with its exclusions narrowed after a review found messages they wrongly
excused ("ممكن مثلا خصم؟", "why you don't call me?", "no discount? then I'm
out", a lawyer who found a problem): Arabic ones bounded, no question or condition excused, the
excused words taken out before the examples judge the rest instead of vetoing the category. Its
figures on holdout4 are the same as version 11's (its messages were not used for that change).

Version 13 came from reading the errors of holdout4 and of a new blind set, holdout5, with the
labelling policy: rules for a named person's number ("could you send me Karim's number?", "ممكن رقم
أستاذة منى؟", "momken raqam Mr. Sherif?"), a counter-price put as the owner moving ("if the owner
comes down to 75 we'd sign", "لو المالك وافق على 8"), and photos that are nothing like the flat; an
Arabic call pattern bounded ("هرن عليكم", I'll ring you, matched "رن علي"); look-alikes said in passing
(a relative who is a lawyer, the customer's own lease ending, "the agent called me" in Arabizi, the
customer's own budget not being negotiable, declining to talk to anyone, the contract put off till
later); 16 examples and 6 non-examples. Three "no need for a call" non-examples were tried and
dropped: the classifier cannot read the negation, and they cost the first holdout a message asking
for a call. holdout6 was written blind at the same time as holdout5 and measured with version 13
frozen: 0.85 / 0.88 under version 12, 0.94 / 0.94 under 13. Its writer worked from the same policy
text, which names "my brother is a lawyer" and a colleague's number, so the rules for those are the
policy's, not holdout6's.

Version 14 is version 13 after an independent review tried to break it (its messages are in
tests/test_check_escalation.py): the number rules want a request ("can you send me …'s number", not
"I'll share Mona's number", "معايا رقم المالك", "ممكن رقمها" for a building); the counter-price rules a
price-shaped figure and the owner as the subject (not "down to 5th settlement", "2 cats", "10% down");
the photo rules no question, no praise ("ربنا يبارك فيك") and no English words in the Arabizi pattern;
"I'm a lawyer" no longer excused; declining a person not excused when another person is asked for
("مش عايز اكلم حد غير المالك"); the lease and "contract later" look-alikes narrowed; "ترن عليا" and "رن
علينا" matched again; curly apostrophes folded; a look-alike said in passing became a `mention`, which
excuses its words without raising the examples' margin as a decline does; two lookaheads bounded
(a 65 KB message took 11.8 s). holdout6 was measured again with version 14 (its messages still
unread): the same 0.94 / 0.94. holdout4 lost precision (0.90 → 0.87: "I'm a lawyer" and the lease
mentions are narrower).

What is asserted: every file is well formed and balanced; the corpus repeats no phrasing of
tests/test_check_escalation.py; no example or non-example is a near-copy of a corpus or holdout
message; the rules misfire on no corpus hard negative and keep precision >= 0.95; patterns +
examples reach the product target on the corpus (recall >= 0.90 at precision >= 0.95) and keep a
floor on each holdout (a message or so under the figures above); no customer turn of the shipped
scenarios that must be answered is escalated.

    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/test_escalation_corpus.py
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from execution.check_escalation import check_escalation
from execution.lib.directives import load_directives
from execution.lib.text import normalize

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "escalation_corpus.yaml"
HOLDOUT = DATA / "escalation_holdout.yaml"
LANGUAGES = ("en", "ar", "arabizi")
CATEGORIES = ("negotiation", "human_request", "legal", "complaint", "out_of_scope")
FIELDS = {"id", "language", "text", "needs_agent", "category", "note"}
MIN_PER_LANGUAGE = 45
MIN_PER_LANGUAGE_HOLDOUT = 20
MIN_PER_CATEGORY_AND_LANGUAGE = 3
POSITIVE_SHARE = (0.4, 0.6)          # "about half" of each language needs the agent
NEAR_COPY = 0.7                      # an example this similar in spelling to a test message is a copy of it

# Patterns + examples must keep these: the corpus its target, each holdout a message or so under its
# figures (docstring). name: (file, floor, how it was written).
CORPUS_FLOOR = {"recall": 0.90, "precision": 0.95}
HOLDOUTS = {
    "holdout": (HOLDOUT, {"recall": 0.83, "precision": 0.85}, "never used to choose an example"),
    "holdout2": (DATA / "escalation_holdout2.yaml", {"recall": 0.85, "precision": 0.90}, "written blind"),
    "holdout3": (DATA / "escalation_holdout3.yaml", {"recall": 0.80, "precision": 0.95}, "written blind"),
    "holdout4": (DATA / "escalation_holdout4.yaml", {"recall": 0.83, "precision": 0.85},
                 "written blind; first read with version 11"),
    "holdout5": (DATA / "escalation_holdout5.yaml", {"recall": 0.90, "precision": 0.94},
                 "written blind; its errors read to write version 13"),
    "holdout6": (DATA / "escalation_holdout6.yaml", {"recall": 0.92, "precision": 0.92},
                 "written blind; never read (measured with versions 12, 13 and 14)"),
}
TARGET = {"recall": 0.90, "precision": 0.95}   # the product requirement on the corpus

# Messages labelled needs_agent: false on which today's rules escalate. Listed so that a new misfire
# fails the run; remove an id when a rule or exclusion fixes it.
KNOWN_FALSE_POSITIVES: set[str] = set()     # version 2 had seven; see the module docstring


def _load(path: Path = CORPUS) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return _load(CORPUS)


@pytest.fixture(scope="module")
def rules():
    return load_directives()["escalation_triggers"]


@pytest.fixture(scope="module")
def decisions(corpus, rules):
    """The rules alone on the corpus."""
    return [(entry, check_escalation(entry["text"], directive=rules, use_examples=False)) for entry in corpus]


@pytest.fixture(scope="module")
def with_examples(corpus, rules):
    return [(entry, check_escalation(entry["text"], directive=rules)) for entry in corpus]


@pytest.fixture(scope="module")
def holdouts() -> dict[str, list[dict]]:
    return {name: _load(path) for name, (path, _, _) in HOLDOUTS.items()}


@pytest.fixture(scope="module")
def holdout_runs(holdouts, rules):
    """Per holdout, the decisions of the rules alone (False) and of rules + examples (True)."""
    return {name: {use: [(e, check_escalation(e["text"], directive=rules, use_examples=use)) for e in entries]
                   for use in (False, True)}
            for name, entries in holdouts.items()}


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
        "wrong_category": [e["id"] for e, d in decisions
                           if e["needs_agent"] and d.escalate and d.category != e["category"]],
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table(figures: dict, title: str = f"escalation rules on {CORPUS.relative_to(CORPUS.parents[2])}") -> str:
    lines = [title,
             f"{'language':<9} {'n':>4} {'pos':>4} {'TP':>3} {'FN':>3} {'FP':>3} {'TN':>3} {'recall':>7} {'precision':>10}"]
    rows = [*figures["by_language"].items(), ("overall", figures["overall"])]
    for name, f in rows:
        lines.append(f"{name:<9} {f['n']:>4} {f['positives']:>4} {f['tp']:>3} {f['fn']:>3} {f['fp']:>3} "
                     f"{f['tn']:>3} {_fmt(f['recall']):>7} {_fmt(f['precision']):>10}")
    lines.append("recall by category: " + ", ".join(
        f"{c} {v['caught']}/{v['positives']}" for c, v in figures["by_category"].items()))
    lines.append("false positives: " + (", ".join(f"{i} ({why})" for i, why in figures["false_positives"].items())
                                        or "none"))
    if figures["wrong_category"]:
        lines.append("escalated under another category: " + ", ".join(figures["wrong_category"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------ the data itself

def _schema_problems(entries) -> list[str]:
    problems = []
    for i, entry in enumerate(entries):
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
    return problems


@pytest.mark.parametrize("path", [CORPUS, *(h[0] for h in HOLDOUTS.values())], ids=["corpus", *HOLDOUTS])
def test_every_entry_has_the_schema(path):
    entries = _load(path)
    assert isinstance(entries, list) and entries
    problems = _schema_problems(entries)
    assert not problems, "\n".join(problems)


def test_ids_and_texts_are_unique(corpus, holdouts):
    both = [*corpus, *(e for entries in holdouts.values() for e in entries)]
    ids = Counter(e["id"] for e in both)
    texts = Counter(normalize(e["text"]).strip() for e in both)
    assert not [i for i, n in ids.items() if n > 1], "duplicate ids"
    assert not [t for t, n in texts.items() if n > 1], "duplicate texts"


@pytest.mark.parametrize("path, minimum", [(CORPUS, MIN_PER_LANGUAGE),
                                           *((h[0], MIN_PER_LANGUAGE_HOLDOUT) for h in HOLDOUTS.values())],
                         ids=["corpus", *HOLDOUTS])
def test_each_language_has_enough_messages_about_half_of_them_needing_the_agent(path, minimum):
    entries = _load(path)
    for language in LANGUAGES:
        mine = [e for e in entries if e["language"] == language]
        assert len(mine) >= minimum, (language, len(mine))
        share = sum(e["needs_agent"] for e in mine) / len(mine)
        assert POSITIVE_SHARE[0] <= share <= POSITIVE_SHARE[1], (language, share)


def test_positives_are_spread_over_every_category_in_every_language(corpus, holdouts):
    counts = Counter((e["language"], e["category"]) for e in corpus if e["needs_agent"])
    thin = {(lang, c): counts[(lang, c)] for lang in LANGUAGES for c in CATEGORIES
            if counts[(lang, c)] < MIN_PER_CATEGORY_AND_LANGUAGE}
    assert not thin, f"fewer than {MIN_PER_CATEGORY_AND_LANGUAGE} positives: {thin}"
    for entries in holdouts.values():
        held = Counter((e["language"], e["category"]) for e in entries if e["needs_agent"])
        assert not [(lang, c) for lang in LANGUAGES for c in CATEGORIES if not held[(lang, c)]]


def test_the_corpus_does_not_repeat_the_phrasings_the_rules_were_tuned_on(corpus):
    from tests.test_check_escalation import ESCALATE, STAY

    tuned = {normalize(t).strip() for t in [*(e[0] for e in ESCALATE), *STAY]}
    repeated = [e["id"] for e in corpus if normalize(e["text"]).strip() in tuned]
    assert not repeated, f"tuning phrasings repeated: {repeated}"


def _spelling(text: str) -> str:
    return re.sub(r"[^\w ]", "", " ".join(normalize(text).split())).strip()


def test_no_example_is_a_copy_of_a_test_message(corpus, holdouts, rules):
    """The examples are the SOP's own phrasings: a near-copy of a message measured here would flatter it."""
    messages = [(e["id"], _spelling(e["text"])) for e in [*corpus, *(e for es in holdouts.values() for e in es)]]
    texts = [t for per in rules["examples"].values() for ts in per.values() for t in ts]
    texts += [t for ts in rules["non_examples"].values() for t in ts]
    copies = []
    for text in texts:
        mine = _spelling(text)
        matcher = difflib.SequenceMatcher(None, mine, autojunk=False)
        for message_id, message in messages:
            matcher.set_seq1(message)
            if matcher.real_quick_ratio() >= NEAR_COPY and matcher.quick_ratio() >= NEAR_COPY \
                    and matcher.ratio() >= NEAR_COPY:
                copies.append(f"{text!r} ~ {message_id}")
    assert not copies, "examples too close to a test message (rephrase them):\n" + "\n".join(copies)


# ------------------------------------------------------------------------------ the rules alone

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
    precision = measure(decisions)["overall"]["precision"]
    assert precision is not None and precision >= 0.95, table(measure(decisions))


# ------------------------------------------------------------------------------ patterns + examples

def test_measure_patterns_and_examples_on_the_corpus_and_the_holdout(
        decisions, with_examples, holdout_runs, record_property):
    corpus_name = CORPUS.relative_to(CORPUS.parents[2])
    runs = {
        f"patterns alone on {corpus_name}": decisions,
        f"patterns + examples on {corpus_name}": with_examples,
    }
    for name, (path, _, how) in HOLDOUTS.items():
        shown = path.relative_to(path.parents[2])
        runs[f"patterns alone on {shown}"] = holdout_runs[name][False]
        runs[f"patterns + examples on {shown} ({how})"] = holdout_runs[name][True]
    figures = {name: measure(pairs) for name, pairs in runs.items()}
    print("\n\n" + "\n\n".join(table(f, name) for name, f in figures.items()))
    record_property("escalation_examples", json.dumps(figures, ensure_ascii=False))


def test_patterns_and_examples_keep_their_floor_on_the_corpus(with_examples):
    overall = measure(with_examples)["overall"]
    assert overall["recall"] >= CORPUS_FLOOR["recall"], table(measure(with_examples))
    assert overall["precision"] >= CORPUS_FLOOR["precision"], table(measure(with_examples))


@pytest.mark.parametrize("name", HOLDOUTS)
def test_patterns_and_examples_keep_their_floor_on_each_holdout(holdout_runs, name):
    floor, overall = HOLDOUTS[name][1], measure(holdout_runs[name][True])["overall"]
    assert overall["recall"] >= floor["recall"] and overall["precision"] >= floor["precision"], \
        table(measure(holdout_runs[name][True]), name)


def test_patterns_and_examples_reach_the_product_target_on_the_corpus(with_examples):
    overall = measure(with_examples)["overall"]
    assert overall["recall"] >= TARGET["recall"] and overall["precision"] >= TARGET["precision"], \
        table(measure(with_examples))


def test_examples_only_add_escalations_to_the_rules(decisions, with_examples):
    """Rules go first: whatever they decide stands; the examples only decide what no rule matched."""
    for (entry, alone), (_, both) in zip(decisions, with_examples):
        if alone.escalate:
            assert (both.rule, both.category) == (alone.rule, alone.category), entry["id"]
        elif both.escalate:
            assert both.rule == f"examples:{both.category}" and both.matched, entry["id"]


SCENARIOS = Path(__file__).resolve().parents[1] / "execution" / "demo_data"


def _answered_turns() -> list[tuple[str, str]]:
    turns = []
    for path in sorted(SCENARIOS.glob("*_scenarios.yaml")):
        spec = yaml.safe_load(path.read_text("utf-8"))
        default = (spec.get("defaults") or {}).get("escalate", False)
        for scenario in spec["scenarios"]:
            for turn in scenario["turns"]:
                if not (turn.get("expect") or {}).get("escalate", default):
                    turns.append((f"{path.name}:{scenario['name']}", turn["say"]))
    return turns


def test_no_shipped_scenario_turn_is_escalated_by_likeness():
    """Precision in conversation: slot numbers, references, budget searches and follow-up questions
    of the shipped scenarios (which must be answered) never reach the agent by the examples."""
    directive = load_directives()["escalation_triggers"]
    turns = _answered_turns()
    assert len(turns) >= 100
    wrong = [(where, said, d.rule) for where, said in turns
             for d in [check_escalation(said, directive=directive)] if d.escalate]
    assert wrong == []
