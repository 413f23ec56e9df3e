"""Decide whether a customer message needs the agent, by the rules and examples of the escalation directive.

Reads: the escalation_triggers directive. Writes nothing: the decider only decides;
escalate_conversation acts on the decision (handoff reply, HUMAN, escalation row, agent alert).
First the rules: the text is normalised (text.normalize) and every language's patterns are tried;
a match escalates at once, unless it overlaps a match of one of that rule's exclusions. When no rule
matches, the examples: a classifier trained on the directive's example messages and look-alikes
(execution/lib/meaning.py) says how likely each category is, and the message is escalated when a
category beats "stays with the assistant" by the directive's `meaning` settings; the words an
exclusion excused are taken out of the text the examples judge.

After editing the examples, `--save-vectors` rewrites the vectors that ship beside the directive
(escalation_triggers.vectors.npz), so a new process need not embed them all before its first answer.

usage: python -m execution.check_escalation --text "ممكن خصم لو دفعت كاش؟" [--agent-name Sara] [--no-examples]
       python -m execution.check_escalation --save-vectors
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from execution.lib import cli, meaning
from execution.lib.criteria import detect_language
from execution.lib.directives import Directive, DirectivesInvalid, load_directives, localized
from execution.lib.text import normalize

_COMPILED: dict[str, tuple] = {}  # directive checksum → (its rules, compiled); a copy with edited rules recompiles


@dataclass(frozen=True)
class EscalationDecision:
    escalate: bool
    language: str
    rule: str | None = None
    category: str | None = None
    matched: str | None = None          # the words that matched, or the nearest example
    pattern_language: str | None = None # the language of the pattern, or of the example
    reply: str | None = None
    why: str = ""
    excluded: tuple[str, ...] = ()      # rules a look-alike exclusion ruled out


def _rules(directive: Directive) -> list:
    known = _COMPILED.get(directive.checksum)
    if known is not None and known[0] is directive["rules"]:
        return known[1]
    compiled = [
        (
            rule,
            [(lang, re.compile(p, re.IGNORECASE)) for lang, ps in rule["patterns"].items() for p in ps],
            [re.compile(p, re.IGNORECASE) for p in rule.get("exclusions", ())],
            [re.compile(p, re.IGNORECASE) for p in rule.get("mentions", ())],
        )
        for rule in directive["rules"]
    ]
    _COMPILED[directive.checksum] = (directive["rules"], compiled)
    return compiled


# A category whose trigger the customer declined ("no need for any discount, is it on a high floor?")
# escalates by its examples only on clear evidence in the rest of the message ("..., but would the
# owner take 4.5M?"): this much more margin than the directive's.
DECLINED_EXTRA_MARGIN = 0.25


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return " ".join("".join(chars).split())


def check_escalation(text: str, *, directive: Directive, agent_name: str = "the agent",
                     agent_gender: str | None = None, use_examples: bool = True) -> EscalationDecision:
    """The first rule with a match that no exclusion of that rule covers; else the nearest example
    in meaning, when the directive's settings accept it (use_examples=False: the rules alone)."""
    language = detect_language(text)
    # Phones type curly apostrophes ("I’m", "don’t"): the rules are written with straight ones.
    folded = normalize(text).translate(_APOSTROPHES)
    excluded: list[str] = []
    excused: list[tuple[int, int]] = []  # the words exclusions excused: the examples do not judge them
    declined: set[str] = set()           # categories whose trigger the customer declined in this message
    for rule, patterns, exclusions, mentions in _rules(directive):
        # Exclusions name the look-alikes ("no discount needed", "my lawyer checked it"): a match inside
        # one does not count, a match elsewhere in the message still does. Mentions likewise ("my brother
        # is a lawyer"), but the customer declined nothing, so the examples judge the rest as usual.
        covered = [m.span() for e in exclusions for m in e.finditer(folded)]
        mentioned = [m.span() for e in mentions for m in e.finditer(folded)]
        spared = None
        passing = None
        for lang, pattern in patterns:
            for match in pattern.finditer(folded):
                start, end = match.span()
                veto = next((s for s in covered if s[0] < end and start < s[1]), None) if covered else None
                if veto is not None:
                    spared = spared or (match.group(0), folded[veto[0]:veto[1]])
                    excused.append(veto)
                    continue
                aside = next((s for s in mentioned if s[0] < end and start < s[1]), None) if mentioned else None
                if aside is not None:
                    passing = passing or (match.group(0), folded[aside[0]:aside[1]])
                    excused.append(aside)
                    continue
                reply = localized(rule["reply"], language, gender=agent_gender).format(agent_name=agent_name)
                return EscalationDecision(
                    True, language, rule["id"], rule["category"], match.group(0), lang, reply,
                    why=f"{lang} pattern of rule {rule['id']} matched {match.group(0)!r}", excluded=tuple(excluded),
                )
        if spared is not None:
            excluded.append(f"{rule['id']}: {spared[0]!r} is excused by exclusion match {spared[1]!r}")
            declined.add(rule["category"])
        if passing is not None:
            excluded.append(f"{rule['id']}: {passing[0]!r} is said in passing ({passing[1]!r})")
    if not use_examples or not text.strip():
        return EscalationDecision(False, language, why="no rule matched", excluded=tuple(excluded))
    # What an exclusion excused ("no need for any discount") is taken out before the examples judge the
    # rest of the message ("..., but would the owner take 4.5M?" still can escalate).
    judged = text if not excused else _blank(folded, excused)
    near = meaning.nearest(judged, directive)
    settings = directive["meaning"]
    scores = (f"most likely {near.example_category} ({near.probability:.2f}, stays {near.stays:.2f}, "
              f"margin {near.margin:+.3f}), nearest example {near.example!r} (similarity {near.similarity:.2f}), "
              f"nearest non-example {near.non_example!r} ({near.non_example_similarity:.2f})")
    if near.category in declined and near.margin < settings["margin"] + DECLINED_EXTRA_MARGIN:
        return EscalationDecision(
            False, language, excluded=tuple(excluded),
            why=f"no rule matched; the customer declined {near.category} in this message, so its examples need "
                f"margin >= {settings['margin'] + DECLINED_EXTRA_MARGIN:g}: {scores}")
    if near.category is None:
        return EscalationDecision(
            False, language, excluded=tuple(excluded),
            why=f"no rule matched; no example is near enough (needs margin >= {settings['margin']} "
                f"and similarity >= {settings['min_similarity']}): {scores}")
    rule = next(r for r in directive["rules"] if r["category"] == near.category)
    reply = localized(rule["reply"], language, gender=agent_gender).format(agent_name=agent_name)
    return EscalationDecision(
        True, language, f"examples:{near.category}", near.category, near.example, near.example_language, reply,
        why=f"no rule matched; {scores}" + (f"; judged on the line {near.text!r}" if near.text != text.strip() else ""),
        excluded=tuple(excluded))


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--text", help="the customer's message")
    p.add_argument("--agent-name", default="the agent", help="name used in the handoff reply")
    p.add_argument("--agent-gender", choices=("female", "male"), default=None, help="for the Arabic wording")
    p.add_argument("--no-examples", action="store_true", help="decide by the rules alone")
    p.add_argument("--save-vectors", action="store_true", help="embed the examples and write their vector file")
    args = p.parse_args(argv)
    if args.text is None and not args.save_vectors:
        p.error("--text or --save-vectors is required")
    try:
        directive = load_directives()["escalation_triggers"]
    except DirectivesInvalid as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                          "problems": [cli.jsonable(p) for p in exc.problems]}, ensure_ascii=False, indent=2))
        return exc.exit_code
    if args.save_vectors:
        print(json.dumps(meaning.save_vectors(directive), ensure_ascii=False, indent=2))
        return 0
    decision = check_escalation(args.text, directive=directive, agent_name=args.agent_name,
                                agent_gender=args.agent_gender, use_examples=not args.no_examples)
    print(json.dumps(cli.jsonable(decision), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
