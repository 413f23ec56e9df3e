"""Escalation with a model present, end to end over the escalation corpus (tests/data/escalation_corpus.yaml).

Every corpus message goes through the real path (webhook → worker → answer_conversation) with a fake
Claude. The rules and the examples decider run first; what they let through reaches the model, whose
decisions are scripted per message: it calls `escalate_to_human` for messages labelled as needing
the agent, except every 10th such message (a scripted miss), and also for every 15th message that
does not need the agent (a scripted false alarm). The figures therefore measure the plumbing (a
model's escalation reaches the agent like a rule's, with rule `model` and its reason) and how the
deciders combine, not a real model's judgement. Printed with -s:

    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/test_escalation_with_model.py
"""

from pathlib import Path

import pytest
import yaml

from execution.check_escalation import check_escalation
from execution.lib.viewing_intent import wants_viewing
from tests.conftest import SHIPPED
from tests.fakes import anthropic_server as A
from tests.test_model_replies import _all, _answer, claude, fake_claude, sara  # noqa: F401

CORPUS = yaml.safe_load((Path(__file__).resolve().parent / "data" / "escalation_corpus.yaml").read_text("utf-8"))


def _scripted(corpus) -> dict[str, bool]:
    """What the scripted model decides for each message id."""
    decisions, positives, negatives = {}, 0, 0
    for entry in corpus:
        if entry["needs_agent"]:
            positives += 1
            decisions[entry["text"]] = positives % 10 != 0
        else:
            negatives += 1
            decisions[entry["text"]] = negatives % 15 == 0
    return decisions


def _figures(pairs) -> tuple[float, float]:
    tp = sum(1 for label, said in pairs if label and said)
    fp = sum(1 for label, said in pairs if not label and said)
    fn = sum(1 for label, said in pairs if label and not said)
    return tp / (tp + fn), (tp / (tp + fp) if tp + fp else 1.0)


def test_rules_examples_and_model_together(resources, sara, fake_claude, claude):
    rules = SHIPPED["escalation_triggers"]
    decisions = _scripted(CORPUS)

    def model(body):
        said = body["messages"][-1]["content"]
        if decisions.get(said):
            return A.tool_use("escalate_to_human", {"reason": "the customer needs the agent", "category": "human_request"})
        return A.text("Happy to help. Which area do you prefer?")

    fake_claude.responder = model
    outcome = {}
    for n, entry in enumerate(CORPUS):
        report = _answer(resources, entry["text"], n + 1, claude, chat=f"1555{n:07d}@c.us")
        outcome[entry["id"]] = (report.answer.value, report.rule)
    rows = {r["rule"] for r in _all(resources.db, "SELECT rule FROM escalations")}
    assert "model" in rows

    table = {}
    for name, said in [
        ("patterns alone", lambda e: check_escalation(e["text"], directive=rules, use_examples=False).escalate),
        ("patterns + examples", lambda e: check_escalation(e["text"], directive=rules).escalate),
        ("patterns + examples + model", lambda e: outcome[e["id"]][0] == "escalated"),
    ]:
        table[name] = _figures([(e["needs_agent"], said(e)) for e in CORPUS])
    print()
    for name, (recall, precision) in table.items():
        print(f"{name:30s} recall {recall:.2f}  precision {precision:.2f}")
    by_model = [i for i, (answer, rule) in outcome.items() if rule == "model"]
    print(f"escalated by the model's tool: {len(by_model)} of {len(CORPUS)}")

    # Every message the model escalated is escalated end to end, and only through the model's tool
    # when the deciders before it had let the message through.
    for entry in CORPUS:
        answer, rule = outcome[entry["id"]]
        first = check_escalation(entry["text"], directive=rules)
        if first.escalate and first.rule.startswith("examples:") and wants_viewing(entry["text"]):
            # A request to visit in so many words goes to the viewing flow, not to the examples' guess.
            assert answer == "replied" and not entry["needs_agent"], entry
        elif first.escalate:
            assert answer == "escalated" and rule == first.rule
        else:
            assert (answer == "escalated") == decisions[entry["text"]]
            assert rule == ("model" if decisions[entry["text"]] else None)
    recall, _ = table["patterns + examples + model"]
    assert recall >= table["patterns + examples"][0]
