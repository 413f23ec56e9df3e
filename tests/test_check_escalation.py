import json

import pytest

from execution import check_escalation as cmd
from execution.check_escalation import check_escalation
from execution.lib.directives import load_directives


@pytest.fixture(scope="module")
def rules():
    return load_directives()["escalation_triggers"]


ESCALATE = [
    # negotiation
    ("Can you give me a discount?", "price_negotiation", "en"),
    ("What's your best price for NH-0004?", "price_negotiation", "en"),
    ("is the price negotiable", "price_negotiation", "en"),
    ("ممكن خصم لو دفعت كاش؟", "price_negotiation", "ar"),
    ("ايه آخر سعر؟", "price_negotiation", "ar"),
    ("أخر سعر كام", "price_negotiation", "ar"),
    ("eh a5er se3r?", "price_negotiation", "arabizi"),
    ("momken khasm law cash?", "price_negotiation", "arabizi"),
    # asks for a person
    ("I want to speak to a real person", "asks_for_a_person", "en"),
    ("please call me", "asks_for_a_person", "en"),
    ("عايز أكلم حد", "asks_for_a_person", "ar"),
    ("ممكن حد يكلمني", "asks_for_a_person", "ar"),
    ("3ayez akalem el agent", "asks_for_a_person", "arabizi"),
    ("kalemni ba3d el dohr", "asks_for_a_person", "arabizi"),
    # legal
    ("can I see the contract before paying?", "legal_or_contract", "en"),
    ("محتاج محامي يراجع العقد", "legal_or_contract", "ar"),
    ("momken ashoof el 3a2d?", "legal_or_contract", "arabizi"),
    # complaint
    ("this is a scam, I want a refund", "complaint", "en"),
    ("انتو نصابين", "complaint", "ar"),
    ("ana mesh mabsot khales mn el ta3amol", "complaint", "arabizi"),
    # outside the listings
    ("do you offer mortgage financing?", "outside_the_listings", "en"),
    ("can you help with renovating the kitchen", "outside_the_listings", "en"),
    ("عايز تمويل عقاري", "outside_the_listings", "ar"),
    ("momken tamweel mn el bank?", "outside_the_listings", "arabizi"),
]

STAY = [
    "I already negotiated with my bank",         # look-alike: not a price negotiation
    "no discount needed, just send the details",
    "what's the payment plan?",
    "3 bedroom flat in New Cairo under 8M",
    "الشقة متشطبة؟",
    "بكام الشقة دي؟",
    "bkam el sha2a?",
    "عايز شقة في التجمع",
    "is it close to a school?",
    "Hello",
]


@pytest.mark.parametrize("text, rule, language", ESCALATE, ids=[e[0] for e in ESCALATE])
def test_escalates_in_every_language(rules, text, rule, language):
    decision = check_escalation(text, directive=rules, agent_name="Sara")
    assert (decision.escalate, decision.rule, decision.language) == (True, rule, language), decision.why
    assert "Sara" in decision.reply
    expected_reply = {r["id"]: r for r in rules["rules"]}[rule]["reply"][language].format(agent_name="Sara")
    assert decision.reply == expected_reply          # the handoff in the customer's own language


@pytest.mark.parametrize("text", STAY)
def test_look_alikes_and_ordinary_questions_do_not_escalate(rules, text):
    decision = check_escalation(text, directive=rules)
    assert decision.escalate is False, decision.why


def test_an_exclusion_is_reported_as_the_reason(rules):
    decision = check_escalation("I already negotiated with my bank", directive=rules)
    assert decision.excluded and decision.excluded[0].startswith("price_negotiation: 'negotiated' is excused")


def test_every_category_has_phrasings_in_every_language(rules):
    categories = {r["id"]: r["category"] for r in rules["rules"]}
    covered = {(categories[rule], language) for _, rule, language in ESCALATE}
    assert covered == {(c, lang) for c in set(categories.values()) for lang in ("en", "ar", "arabizi")}


def test_cli_prints_the_decision_the_rule_and_why(capsys):
    assert cmd.main(["--text", "ممكن خصم؟", "--agent-name", "Sara"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["escalate"], out["rule"], out["category"], out["matched"]) == (
        True, "price_negotiation", "negotiation", "خصم")
    assert out["why"] == "ar pattern of rule price_negotiation matched 'خصم'"
