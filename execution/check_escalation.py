"""Decide whether a customer message needs the agent, by the rules of the escalation directive.

Reads: the escalation_triggers directive. Writes nothing: the decider only decides;
escalate_conversation acts on the decision (handoff reply, HUMAN, escalation row, agent alert).
The text is normalised (text.normalize) before matching; every language's patterns are tried.

usage: python -m execution.check_escalation --text "ممكن خصم لو دفعت كاش؟" [--agent-name Sara]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from execution.lib import cli
from execution.lib.criteria import detect_language
from execution.lib.directives import Directive, load_directives, localized
from execution.lib.text import normalize

_COMPILED: dict[str, list] = {}   # directive checksum → compiled rules


@dataclass(frozen=True)
class EscalationDecision:
    escalate: bool
    language: str
    rule: str | None = None
    category: str | None = None
    matched: str | None = None          # the words that matched
    pattern_language: str | None = None
    reply: str | None = None
    why: str = ""
    excluded: tuple[str, ...] = ()      # rules a look-alike exclusion ruled out


def _rules(directive: Directive) -> list:
    compiled = _COMPILED.get(directive.checksum)
    if compiled is None:
        compiled = [
            (
                rule,
                [(lang, re.compile(p, re.IGNORECASE)) for lang, ps in rule["patterns"].items() for p in ps],
                [re.compile(p, re.IGNORECASE) for p in rule.get("exclusions", ())],
            )
            for rule in directive["rules"]
        ]
        _COMPILED[directive.checksum] = compiled
    return compiled


def check_escalation(text: str, *, directive: Directive, agent_name: str = "the agent",
                     agent_gender: str | None = None) -> EscalationDecision:
    """The first rule whose pattern matches and no exclusion of that rule does; else no escalation."""
    language = detect_language(text)
    folded = normalize(text)
    excluded: list[str] = []
    for rule, patterns, exclusions in _rules(directive):
        for lang, pattern in patterns:
            match = pattern.search(folded)
            if not match:
                continue
            veto = next((e for e in exclusions if e.search(folded)), None)
            if veto is not None:
                excluded.append(f"{rule['id']}: {match.group(0)!r} is excused by exclusion {veto.pattern!r}")
                break
            reply = localized(rule["reply"], language, gender=agent_gender).format(agent_name=agent_name)
            return EscalationDecision(
                True, language, rule["id"], rule["category"], match.group(0), lang, reply,
                why=f"{lang} pattern of rule {rule['id']} matched {match.group(0)!r}", excluded=tuple(excluded),
            )
    return EscalationDecision(False, language, why="no rule matched", excluded=tuple(excluded))


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--text", required=True, help="the customer's message")
    p.add_argument("--agent-name", default="the agent", help="name used in the handoff reply")
    p.add_argument("--agent-gender", choices=("female", "male"), default=None, help="for the Arabic wording")
    args = p.parse_args(argv)
    directive = load_directives()["escalation_triggers"]
    decision = check_escalation(args.text, directive=directive, agent_name=args.agent_name,
                                agent_gender=args.agent_gender)
    print(json.dumps(cli.jsonable(decision), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
