"""The offline responder (offline_reply): wording from the persona directive, facts only from the agent's listings."""

import json
import shutil
from pathlib import Path

import pytest

from execution import cancel_followups as cancel_cmd
from execution import check_conversation_mode as mode_cmd
from execution.resume_conversations import resume_conversations as auto_resume
from execution.lib.replies import Reply
from execution.offline_reply import offline_reply as generate_ai_response
from execution.identify_conversation import identify_conversation
from execution.lib import message_store, tenant_store
from execution.lib.directives import DIRECTIVES_ROOT, DirectiveStore, load_directives
from execution.lib.listing_import import import_listings
from execution.set_mode_human import set_mode_human

DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data" / "listings_nile_homes.csv"


@pytest.fixture
def chat(conn):
    org = tenant_store.upsert_organization(conn, slug="nile", name="Nile Homes")
    agent = tenant_store.upsert_agent(conn, organization_id=org["id"], email="sara@nile-homes.example", name="Sara",
                               password_hash=None)
    channel = tenant_store.upsert_channel(conn, organization_id=org["id"], agent_id=agent["id"], provider="sandbox",
                                   instance_id="1100000055")
    assert not import_listings(conn, path=DEMO).errors
    convo = identify_conversation(conn, channel=channel, chat_id="15550000001@c.us")
    profile = tenant_store.agent_profile(conn, agent_id=agent["id"])
    counter = iter(range(1, 1000))

    def say(text, snapshot=None) -> Reply:
        n = next(counter)
        mid = message_store.insert_message(conn, organization_id=org["id"], conversation_id=convo["id"],
                                           direction="inbound", author="customer", message_type="text", body=text,
                                           provider_message_id=f"T{n}")
        reply = generate_ai_response(conn, conversation={**convo, "agent_id": agent["id"]},
                                     messages=[{"id": mid, "body": text}], snapshot=snapshot or load_directives(),
                                     agent=profile)
        # What the assistant said counts as said (the greeting comes once).
        message_store.insert_message(conn, organization_id=org["id"], conversation_id=convo["id"],
                                     direction="outbound", author="ai", message_type="text", body=reply.text)
        return reply

    return say, convo, conn


def test_greets_once_then_asks_for_what_is_missing(chat):
    say, _, _ = chat
    first = say("Hello")
    assert first.kind == "ask"
    assert first.text.startswith("Hello! I'm the assistant of Sara at Nile Homes")
    assert "Which area do you prefer?" in first.text and "What budget do you have in mind?" in first.text
    second = say("hi again")
    assert "I'm the assistant" not in second.text


def test_answers_in_arabic_with_listings_and_arabic_digits(chat):
    say, _, _ = chat
    reply = say("عايز شقة للإيجار في المعادي")
    assert (reply.language, reply.kind) == ("ar", "results")
    assert reply.references == ("NH-0052", "NH-0049")
    assert "دي الوحدات اللي لقيتها (2):" in reply.text and "٤٬٥٠٠ جنيه في الشهر" in reply.text
    assert "ميزانيتك في حدود كام؟" in reply.text   # still unknown: budget (then bedrooms)


def test_answers_arabizi_in_arabizi(chat):
    say, _, _ = chat
    reply = say("3ayez sha2a egar fel maadi")
    assert reply.language == "arabizi" and reply.references == ("NH-0052", "NH-0049")
    assert "Dol el wehdat elly la2etha (2):" in reply.text


def test_questions_about_a_listing_on_the_table_are_answered_from_its_fields(chat):
    say, _, _ = chat
    detail = say("tell me about NH-0001")
    assert detail.kind == "detail" and "*Amber Court* · NH-0001" in detail.text
    assert detail.pin["latitude"] == pytest.approx(29.95515)
    plan = say("what's the payment plan?")
    assert (plan.kind, plan.references) == ("answer", ("NH-0001",))
    assert "The payment plan for NH-0001: 15% down, 8 years." in plan.text
    delivery = say("and when is delivery?")
    assert "NH-0001: Delivery Mar 2029." in delivery.text
    arabic = say("فيها مميزات ايه؟")
    assert "الوحدة NH-0001 فيها: مسجد، سمارت هوم، مساحات خضراء." in arabic.text


def test_unknown_reference_and_nothing_matching_are_said_plainly(chat):
    say, _, _ = chat
    assert say("details of DR-0001 please").kind == "unknown"   # another agent's listing
    nothing = say("villa for rent in Zamalek with sea view")
    assert nothing.kind in ("closest", "no_results")
    if nothing.kind == "no_results":
        assert "Sara will check new options for you and follow up" in nothing.text


def test_editing_a_persona_template_changes_the_next_reply(chat, tmp_path):
    say, _, _ = chat
    root = tmp_path / "directives"
    shutil.copytree(DIRECTIVES_ROOT, root)
    store_ = DirectiveStore(root, reload_interval_s=0)
    path = root / "ai_behavior" / "persona_enforcement.md"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "Here is what I found ({count}):", "Good news, {count} homes match:"), encoding="utf-8")
    assert "Good news, 2 homes match:" in say("flat for rent in maadi", store_.current()).text
    path.write_text(path.read_text(encoding="utf-8").replace("Good news, {count}", "Good news, {cnt}"),
                    encoding="utf-8")
    snapshot = store_.current()   # refused: the previous wording stays
    assert store_.errors and "unknown placeholder(s) ['cnt']" in store_.errors[0]
    assert "Good news, 2 homes match:" in say("flat for rent in maadi", snapshot).text


def test_mode_commands_cancel_followups_and_auto_resume(resources):
    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="nile", name="Nile Homes")
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email="s@n.example", name="S", password_hash=None)
        channel = tenant_store.upsert_channel(c, organization_id=org["id"], agent_id=agent["id"], provider="sandbox",
                                       instance_id="1100000056")
        convo = identify_conversation(c, channel=channel, chat_id="15550000002@c.us")
        with c.cursor() as cur:
            for key in ("f1", "f2"):
                cur.execute("INSERT INTO followups (organization_id, conversation_id, kind, due_at, idempotency_key) "
                            "VALUES (%s, %s, 'nudge', now() + interval '1 day', %s)", (org["id"], convo["id"], key))
    with resources.db.connection() as c:
        change = set_mode_human(c, snapshot=load_directives(), conversation_id=convo["id"], actor="inbox", reason="vip")
    assert change.followups_cancelled == 2
    assert cancel_cmd.main(["--conversation", str(convo["id"])], resources=resources) == 0
    assert mode_cmd.main(["--conversation", str(convo["id"])], resources=resources) == 0
    snapshot = load_directives()
    assert auto_resume(resources.db, snapshot=snapshot) == []        # off by default
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("UPDATE conversations SET mode_changed_at = now() - interval '5 hours' WHERE id = %s", (convo["id"],))
    values = {**snapshot["ai_human_toggle_logic"].values, "auto_resume_after_hours": 4}
    on = type(snapshot)({**snapshot.directives, "ai_human_toggle_logic": type(snapshot["ai_human_toggle_logic"])(
        **{**snapshot["ai_human_toggle_logic"].__dict__, "values": values})})
    assert auto_resume(resources.db, snapshot=on) == [convo["id"]]
    with resources.db.connection() as c:
        state = mode_cmd.check_conversation_mode(c, conversation_id=convo["id"])
    assert (state["mode"], state["pending_followups"]) == ("AI", 0)
    assert state["mode_reason"].startswith("auto_resume after 4 h")


def test_cli_prints_the_mode(resources, capsys):
    assert mode_cmd.main(["--conversation", "999999"], resources=resources) == 4
    assert json.loads(capsys.readouterr().err)["error"] == "NotFound"
