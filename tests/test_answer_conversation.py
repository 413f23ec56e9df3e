"""End to end: a Green API webhook → the worker → the responder → a reply at the fake Green API."""

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution.lib.listing_import import import_listings
from main import create_app
from tests.conftest import SHIPPED, SNAPSHOT, WEBHOOK_TOKEN, StaticDirectives, load_fixture
from tests.waiting import wait_for

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data" / "listings_nile_homes.csv"


def _serve(resources, green_channel, snapshot):
    with resources.db.transaction() as c:
        agent = {"id": green_channel["agent_id"], "organization_id": green_channel["organization_id"],
                 "email": "agent@acme.example"}
        assert not import_listings(c, path=DEMO, agent=agent, reassign=True).errors
    return TestClient(create_app(resources, run_worker=True, directives=StaticDirectives(snapshot)))


@pytest.fixture
def app(resources, green_channel):
    with _serve(resources, green_channel, SNAPSHOT) as client:    # no burst window, no pacing
        yield client


@pytest.fixture
def bursty_app(resources, green_channel):
    with _serve(resources, green_channel, SHIPPED) as client:     # the shipped 1.5 s burst window
        yield client


def _settled(resources):
    """Every stored event applied and no reply scheduled: whatever was going to be sent has been decided."""
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM webhook_events WHERE status NOT IN ('done', 'ignored')")
        pending = cur.fetchone()["n"]
        cur.execute("SELECT count(*) AS n FROM conversations WHERE reply_due_at IS NOT NULL "
                    "OR reply_claim_until IS NOT NULL")
        return pending == 0 and cur.fetchone()["n"] == 0


def _customer(text, n, chat="15550000001@c.us"):
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"E2E{n:08d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


def _sent_to(fake, chat="15550000001@c.us"):
    return [c["body"]["message"] for c in fake.calls("sendMessage") if c["body"]["chatId"] == chat]


def _conversation(resources, chat="15550000001@c.us"):
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, mode, mode_reason, needs_attention, reply_due_at FROM conversations WHERE chat_id = %s",
                    (chat,))
        return cur.fetchone()


def test_the_fixture_gets_an_offline_reply_naming_real_listings(app, resources, fake_green_api):
    assert app.post("/webhooks/green-api", json=load_fixture("greenapi_incoming_text.json"), headers=AUTH).status_code == 200
    replies = wait_for(lambda: _sent_to(fake_green_api))
    reply = replies[0]
    references = re.findall(r"\((NH-\d{4})\)", reply)
    assert references, reply
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT reference, property_type, bedrooms, status, price FROM properties WHERE reference = ANY(%s)",
                    (references,))
        rows = cur.fetchall()
    assert len(rows) == len(references)
    for row in rows:   # the customer asked for a 2-bedroom flat: every listing named is one, and available
        assert (row["property_type"], row["bedrooms"], row["status"]) == ("apartment", 2, "available")
        assert f"EGP {row['price']:,.0f}" in reply
    assert reply.startswith("Hello! I'm the assistant of Agent at Acme Homes")
    wait_for(lambda: _conversation(resources)["reply_due_at"] is None)   # cleared just after the send


def test_an_arabic_discount_request_hands_over_and_alerts_the_agent(app, resources, fake_green_api):
    app.post("/webhooks/green-api", json=_customer("ممكن خصم لو دفعت كاش؟", 1), headers=AUTH)
    handoff = wait_for(lambda: _sent_to(fake_green_api))
    assert handoff == ["هحوّل طلبك لـ Agent لأنه بيتابع موضوع الأسعار بنفسه، وهيرد عليك هنا قريب."]
    alert = wait_for(lambda: _sent_to(fake_green_api, "15550000000@c.us"))
    assert "15550000001" in alert[0] and "price_negotiation" in alert[0] and "ممكن خصم" in alert[0]
    convo = _conversation(resources)
    assert (convo["mode"], convo["mode_reason"], convo["needs_attention"]) == (
        "HUMAN", "escalation:price_negotiation", True)
    def escalations():
        with resources.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT rule, category, alert_status FROM escalations")
            return [dict(r) for r in cur.fetchall()]

    # The alert's status is recorded just after the fake server has it.
    wait_for(lambda: [e["alert_status"] for e in escalations()] == ["sent"])
    assert escalations() == [{"rule": "price_negotiation", "category": "negotiation", "alert_status": "sent"}]
    # The customer writes again: the agent has it now, the assistant stays silent.
    app.post("/webhooks/green-api", json=_customer("hello??", 2), headers=AUTH)
    wait_for(lambda: _settled(resources))
    assert len(_sent_to(fake_green_api)) == 1


def test_a_reply_from_the_agents_phone_silences_the_assistant(app, resources, fake_green_api):
    app.post("/webhooks/green-api", json=_customer("Hi, I want a flat in Maadi", 1), headers=AUTH)
    wait_for(lambda: _sent_to(fake_green_api))
    phone = load_fixture("greenapi_outgoing_from_phone.json")
    phone["senderData"]["chatId"] = "15550000001@c.us"
    app.post("/webhooks/green-api", json=phone, headers=AUTH)
    wait_for(lambda: _conversation(resources)["mode"] == "HUMAN")
    assert _conversation(resources)["mode_reason"] == "phone_reply"
    app.post("/webhooks/green-api", json=_customer("and with 3 bedrooms?", 2), headers=AUTH)
    wait_for(lambda: _settled(resources))
    assert len(_sent_to(fake_green_api)) == 1


def test_five_messages_in_one_second_get_one_reply(bursty_app, resources, fake_green_api):
    for n, text in enumerate(["hi", "I want to buy", "a flat", "in New Cairo", "3 bedrooms"]):
        bursty_app.post("/webhooks/green-api", json=_customer(text, n), headers=AUTH)
        time.sleep(0.2)   # the customer types: this is the input, not a wait for a result
    replies = wait_for(lambda: _sent_to(fake_green_api))
    wait_for(lambda: _settled(resources))
    assert len(_sent_to(fake_green_api)) == 1
    # Answered together: the reply uses what all five said.
    assert "NH-0058" in replies[0] and "3-bedroom apartment for sale in New Cairo" in replies[0]


def test_a_failing_answer_is_reported_and_its_text_stays_out_of_the_logs(resources, green_channel, monkeypatch,
                                                                         caplog):
    from execution import answer_conversation as answering
    from execution import answer_due
    from execution.identify_conversation import identify_conversation
    from execution.lib import conversation_store, message_store
    from tests.conftest import SNAPSHOT
    from execution.lib.providers import ProviderRegistry

    with resources.db.transaction() as c:
        convo = identify_conversation(c, channel=green_channel, chat_id="15550000001@c.us")
        message_store.insert_message(c, organization_id=green_channel["organization_id"], conversation_id=convo["id"],
                                     direction="inbound", author="customer", message_type="text",
                                     body="my secret budget", provider_message_id="FAIL1")
        conversation_store.schedule_reply(c, conversation_id=convo["id"], window_s=0, cap_s=0)

    def broken(*args, **kwargs):
        raise ValueError("my secret budget")

    monkeypatch.setattr(answering, "generate_ai_response", broken)
    reports = answer_due.answer_due(resources.db, resources.redis, ProviderRegistry(secret_key="unused"),
                                    snapshot=SNAPSHOT)
    assert [(r.conversation_id, r.answer, r.kind) for r in reports] == [(convo["id"], answering.Answer.FAILED,
                                                                         "ValueError")]
    assert "ValueError" in caplog.text and "my secret budget" not in caplog.text
