"""evaluate_responder: scripted conversations judged per turn in a throwaway agency, and a replay of
stored messages under an edited directive set."""

import shutil
from pathlib import Path

import yaml

from execution.evaluate_responder import replay, run_scenarios
from execution.identify_conversation import identify_conversation
from execution.lib import message_store, tenant_store
from execution.lib.directives import DIRECTIVES_ROOT, load_directives
from execution.lib.providers import provider_class

ROOT = Path(__file__).resolve().parents[1]


def test_scenarios_are_judged_per_turn_and_leave_nothing_behind(resources, tmp_path, capsys):
    shutil.copy(ROOT / "execution" / "demo_data" / "listings_nile_homes.csv", tmp_path / "listings.csv")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "listings": "listings.csv", "agent": {"name": "Sara", "gender": "female"},
        "scenarios": [{"name": "two turns", "turns": [
            {"say": "ok tell me about NH-0001", "expect": {"escalate": False, "mentions": ["NH-0001", "Amber Court"]}},
            {"say": "can I talk to a real person please", "expect": {"escalate": False}},   # a wrong expectation
        ]}]}, allow_unicode=True), encoding="utf-8")
    result = run_scenarios(resources.db, None, load_directives(), tmp_path / "s.yaml")
    out = capsys.readouterr().out
    assert result == {"turns": 2, "failed": 1, "exit_code": 1}
    assert "ok   [two turns] 'ok tell me about NH-0001'" in out and "grounded=yes" in out
    assert "FAIL [two turns]" in out and "escalated but should answer" in out
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM organizations WHERE slug LIKE 'evaluation-%'")
        assert cur.fetchone()["n"] == 0


def test_replay_lists_the_decisions_an_edit_would_change(resources, tmp_path):
    with resources.db.transaction() as conn:
        org = tenant_store.upsert_organization(conn, slug="acme", name="Acme")
        agent = tenant_store.upsert_agent(conn, organization_id=org["id"], email="a@acme.example", name="A",
                                          password_hash=None)
        channel = tenant_store.upsert_channel(conn, organization_id=org["id"], agent_id=agent["id"],
                                              provider="sandbox", instance_id="sbreplay")
        convo = identify_conversation(conn, channel=channel, chat_id=provider_class("sandbox").chat_key("201000000009"))
        for n, text in enumerate(["do you have a flamingo pool villa?", "3 bedrooms in Maadi"]):
            message_store.insert_message(conn, organization_id=org["id"], conversation_id=convo["id"],
                                         direction="inbound", author="customer", body=text, provider_message_id=f"r{n}")
    edited = tmp_path / "directives"
    shutil.copytree(DIRECTIVES_ROOT, edited)
    path = edited / "ai_behavior" / "escalation_triggers.md"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "        - '\\b(complain\\w*|", "        - '\\bflamingo\\b'\n        - '\\b(complain\\w*|", 1), encoding="utf-8")
    result = replay(resources.db, load_directives(), load_directives(edited), days=7)
    assert result["messages"] == 2 and result["changed"] == 1
    assert result["changes"][0]["now"] == "escalate" and "flamingo" in result["changes"][0]["text"]


def test_kind_references_promise_and_not_mentions_are_judged(resources, tmp_path, capsys):
    shutil.copy(ROOT / "execution" / "demo_data" / "listings_nile_homes.csv", tmp_path / "listings.csv")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "listings": "listings.csv", "agent": {"name": "Sara", "gender": "female"}, "defaults": {"escalate": False},
        "scenarios": [{"name": "judged", "turns": [
            {"say": "tell me about NH-0001", "expect": {"kind": "detail", "references": ["NH-0001"], "promise": False,
                                                        "not_mentions": ["NH-0002"]}},
            {"say": "is it furnished?", "expect": {"kind": "answer", "references": ["NH-0001"], "promise": False,
                                                   "not_mentions": ["Sara"]}},   # four wrong expectations
        ]}]}, allow_unicode=True), encoding="utf-8")
    result = run_scenarios(resources.db, None, load_directives(), tmp_path / "s.yaml")
    out = capsys.readouterr().out
    assert result == {"turns": 2, "failed": 1, "exit_code": 1}
    assert "mentions 'Sara'" in out and "kind unknown, expected answer" in out
    assert "references [], expected ['NH-0001']" in out and "promise 'answer_question', expected False" in out


def test_the_shipped_conversation_scenarios_pass_offline(resources, capsys):
    path = ROOT / "execution" / "demo_data" / "conversation_scenarios.yaml"
    result = run_scenarios(resources.db, None, load_directives(), path)
    out = capsys.readouterr().out
    assert result["failed"] == 0, "\n".join(line for line in out.splitlines() if "FAIL" in line or "problems" in line)
    assert result["turns"] == sum(len(s["turns"]) for s in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"])
