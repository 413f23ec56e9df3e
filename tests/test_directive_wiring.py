"""Directive keys change behaviour when flipped; what a reply promises is recorded; wording follows the agent."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution.answer_conversation import Answer, answer_conversation
from execution.check_escalation import check_escalation
from execution.lib import conversation_store
from execution.lib.directives import localized
from execution.lib.listing_import import import_listings
from execution.lib.providers import ProviderRegistry
from execution.worker import run_once
from main import create_app
from tests.conftest import SHIPPED, SNAPSHOT, StaticDirectives, load_fixture, post_green_api
from tests.waiting import wait_for

DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data" / "listings_nile_homes.csv"
AUTH = {"Authorization": "Bearer test-webhook-token-not-real"}


def _one(db, sql, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def _customer(text, n, chat="15550000001@c.us"):
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"WIRE{n:08d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


@pytest.mark.parametrize("takes_over, mode", [(True, "HUMAN"), (False, "AI")])
def test_phone_reply_takes_over_is_read(resources, green_channel, takes_over, mode):
    snapshot = SNAPSHOT.with_values("ai_human_toggle_logic", phone_reply_takes_over=takes_over)
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    post_green_api(resources.db, load_fixture("greenapi_outgoing_from_phone.json"))
    run_once(resources.db, snapshot=snapshot)
    assert _one(resources.db, "SELECT mode FROM conversations")["mode"] == mode
    assert _one(resources.db, "SELECT count(*) AS n FROM messages WHERE author = 'agent'")["n"] == 1


@pytest.mark.parametrize("interval_ms, second", [(0, "sent"), (400, "queued")])
def test_send_interval_is_read_per_provider(resources, green_channel, fake_green_api, interval_ms, second):
    from execution.identify_conversation import identify_conversation
    from execution.send_whatsapp_message import OutboundContent, send_whatsapp_message

    snapshot = SNAPSHOT.with_values("message_sending_rules", send_interval_ms={"green_api": interval_ms},
                                    default_send_interval_ms=5000)   # the default is not green_api's
    with resources.db.connection() as c:
        convo = identify_conversation(c, channel=green_channel, chat_id="15550000001@c.us")
    registry = ProviderRegistry(secret_key=resources.settings.secret_key)
    outcomes = [send_whatsapp_message(resources.db, resources.redis, registry, snapshot=snapshot,
                                      conversation_id=convo["id"], idempotency_key=f"agent:{key}", author="agent",
                                      content=OutboundContent(text="hi")).outcome.value for key in ("a", "b")]
    # A slot 400 ms away is not waited for in the sending thread: the send is scheduled for it.
    assert outcomes == ["sent", second]
    if second == "queued":
        due = _one(resources.db, "SELECT extract(epoch FROM next_attempt_at - now()) AS s FROM outbox "
                                 "WHERE status = 'retrying'")["s"]
        assert 0.2 < due <= 0.4


def test_not_a_persons_chat_is_stored_and_never_answered(resources, green_channel):
    for n, chat in enumerate(["status@broadcast", "120363000000000001@newsletter", "../../etc"]):
        post_green_api(resources.db, _customer("hello", n, chat))
    report = run_once(resources.db, snapshot=SNAPSHOT)
    assert report.done == 3
    assert [r.needs_reply for r in report.results] == [False] * 3
    assert all("not a person's chat" in r.reason for r in report.results)
    assert _one(resources.db, "SELECT count(*) AS n FROM conversations WHERE reply_due_at IS NOT NULL")["n"] == 0


def test_arabic_handoff_agrees_with_the_agents_gender():
    rules = SHIPPED["escalation_triggers"]
    her = check_escalation("ممكن خصم لو دفعت كاش؟", directive=rules, agent_name="سارة", agent_gender="female")
    him = check_escalation("ممكن خصم لو دفعت كاش؟", directive=rules, agent_name="عمر", agent_gender="male")
    assert "لأنها بتتابع" in her.reply and "لأنه بيتابع" in him.reply
    unknown = check_escalation("3ayez khasm", directive=rules, agent_name="Sara")
    assert "howa" in unknown.reply      # no gender given: the plain wording
    templates = SHIPPED["persona_enforcement"]["templates"]
    assert localized(templates["no_results"], "en", gender="female") == templates["no_results"]["en"]


@pytest.fixture
def sara(resources, green_channel):
    with resources.db.transaction() as c:
        with c.cursor() as cur:
            cur.execute("UPDATE agents SET name = 'Sara', gender = 'female' WHERE id = %s", (green_channel["agent_id"],))
        agent = {"id": green_channel["agent_id"], "organization_id": green_channel["organization_id"],
                 "email": "agent@acme.example"}
        assert not import_listings(c, path=DEMO, agent=agent, reassign=True).errors
    return green_channel


def _answer(resources, text, n):
    post_green_api(resources.db, _customer(text, n))
    [result] = run_once(resources.db, snapshot=SNAPSHOT).results
    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    return answer_conversation(resources.db, resources.redis, providers, conversation_id=result.conversation_id,
                               snapshot=SNAPSHOT)


def test_a_promise_in_a_reply_becomes_the_agents_task(resources, sara, fake_green_api):
    report = _answer(resources, "ابغى فيلا للايجار في الساحل الشمالي بميزانية 1000 جنيه", 1)
    assert report.answer is Answer.REPLIED and report.kind == "no_results"
    [sent] = [c["body"]["message"] for c in fake_green_api.calls("sendMessage")]
    assert "Sara هتدورلك" in sent                                 # the female agent's wording
    task = _one(resources.db, "SELECT kind, owner, status FROM followups")
    assert task == {"kind": "find_new_options", "owner": "agent", "status": "pending"}
    assert _one(resources.db, "SELECT needs_attention FROM conversations")["needs_attention"] is True
    # A takeover cancels what the assistant would send, never the agent's own task.
    from execution.set_mode_human import set_mode_human

    with resources.db.connection() as c:
        change = set_mode_human(c, snapshot=SNAPSHOT, conversation_id=report.conversation_id, actor="inbox",
                                reason="test")
    assert change.followups_cancelled == 0
    assert _one(resources.db, "SELECT status FROM followups")["status"] == "pending"


def test_a_reply_that_promises_nothing_records_no_task(resources, sara, fake_green_api):
    report = _answer(resources, "I want a 2 bedroom apartment for rent in Maadi", 1)
    assert report.answer is Answer.REPLIED and report.kind == "results"
    assert _one(resources.db, "SELECT count(*) AS n FROM followups WHERE owner = 'agent'")["n"] == 0
    # (a shortlist schedules the assistant's own follow-up: that is not a task for the agent)
    assert _one(resources.db, "SELECT count(*) AS n FROM followups WHERE owner = 'assistant'")["n"] == 1


def test_ai_messages_record_the_directive_versions_they_were_made_under(resources, sara, fake_green_api):
    _answer(resources, "I want a 2 bedroom apartment for rent in Maadi", 1)
    row = _one(resources.db, "SELECT directive_versions FROM messages WHERE author = 'ai'")
    assert row["directive_versions"] == SNAPSHOT.versions() and row["directive_versions"]["persona_enforcement"] >= 1


def test_the_escalation_alert_goes_to_the_agents_own_chat(resources, sara, fake_green_api):
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("UPDATE agents SET phone = '+20 100 000 0000' WHERE id = %s", (sara["agent_id"],))
    report = _answer(resources, "can I get a discount if I pay cash?", 1)
    assert report.answer is Answer.ESCALATED
    chats = [c["body"]["chatId"] for c in fake_green_api.calls("sendMessage")]
    assert chats == ["15550000001@c.us", "201000000000@c.us"]
    assert _one(resources.db, "SELECT alert_status FROM escalations")["alert_status"] == "sent"
    alerts = _one(resources.db, "SELECT mode, mode_reason FROM conversations WHERE chat_id = '201000000000@c.us'")
    assert alerts == {"mode": "HUMAN", "mode_reason": "agent_alerts"}


def test_the_app_answers_with_the_snapshot_it_was_given(resources, sara, fake_green_api):
    quiet = StaticDirectives(SNAPSHOT.with_values("incoming_message_router", answer_message_types=["image"]))
    with TestClient(create_app(resources, run_worker=True, directives=quiet)) as client:
        client.post("/webhooks/green-api", json=_customer("flat in Maadi", 1), headers=AUTH)
        wait_for(lambda: _one(resources.db, "SELECT status FROM webhook_events")["status"] == "done")
    with resources.db.connection() as conn:
        state = conversation_store.conversation_state(
            conn, conversation_id=_one(resources.db, "SELECT id FROM conversations")["id"])
    assert state["reply_due_at"] is None and fake_green_api.calls() == []   # text is not answered under this edit


def test_the_inbox_getters_see_only_the_owners_rows(resources, green_channel, meta_channel):
    from execution.identify_conversation import identify_conversation
    from execution.lib import message_store

    with resources.db.transaction() as c:
        mine = identify_conversation(c, channel=green_channel, chat_id="15550000001@c.us")
        theirs = identify_conversation(c, channel=meta_channel, chat_id="15550000002")
    me, other = green_channel["agent_id"], meta_channel["agent_id"]
    with resources.db.connection() as c:
        assert conversation_store.conversation_for_agent(c, agent_id=me, conversation_id=mine["id"])["id"] == mine["id"]
        assert conversation_store.conversation_for_agent(c, agent_id=me, conversation_id=theirs["id"]) is None
        assert [r["id"] for r in conversation_store.conversations_for_agent(c, agent_id=other)] == [theirs["id"]]
        assert message_store.thread_for_agent(c, agent_id=me, conversation_id=theirs["id"]) is None
        assert message_store.thread_for_agent(c, agent_id=other, conversation_id=theirs["id"]) == []


def test_the_simulator_never_reads_a_real_channels_chat(resources, green_channel):
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    run_once(resources.db, snapshot=SNAPSHOT)
    chat = _one(resources.db, "SELECT chat_id FROM conversations")["chat_id"]
    with TestClient(create_app(resources, run_worker=False, directives=StaticDirectives())) as client:
        r = client.get("/simulator/api/messages", params={"channel_id": green_channel["id"], "chat_id": chat})
    # A Green API channel's customer stays private: the simulator is off while a real channel exists,
    # and even when it is on it reads sandbox chats only.
    assert r.status_code == 404 or r.json()["messages"] == []
    assert "2-bedroom" not in r.text
