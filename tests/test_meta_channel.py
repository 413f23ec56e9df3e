"""The Meta Cloud API channel end to end: signed webhooks in, replies out to a fake Graph API, the 24 h window."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution import send_whatsapp_message as send_cmd
from execution.lib import conversation_store
from execution.lib.listing_import import import_listings
from execution.lib.providers import ProviderRegistry
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from main import create_app
from tests.conftest import (
    META_FIXTURES,
    META_PHONE_NUMBER_ID,
    META_VERIFY_TOKEN,
    SNAPSHOT,
    StaticDirectives,
    meta_signature,
)
from tests.waiting import wait_for

DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data" / "listings_nile_homes.csv"
CUSTOMER = "15550000001"


def _count(db, sql, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()["n"]


def _text_body(text: str, n: int, customer: str = CUSTOMER) -> bytes:
    body = json.loads((META_FIXTURES / "meta_text.json").read_text())
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = customer
    value["messages"][0].update({"from": customer, "id": f"wamid.E2E{n:032d}", "text": {"body": text}})
    return json.dumps(body, ensure_ascii=False).encode()


def _post(client, body: bytes, signature: str | None = "auto"):
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Hub-Signature-256"] = meta_signature(body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/webhooks/meta", content=body, headers=headers)


@pytest.fixture
def app(resources, meta_channel):
    with resources.db.transaction() as c:
        agent = {"id": meta_channel["agent_id"], "organization_id": meta_channel["organization_id"],
                 "email": "agent@meta-homes.example"}
        assert not import_listings(c, path=DEMO, agent=agent, reassign=True).errors
    with TestClient(create_app(resources, run_worker=True, directives=StaticDirectives())) as client:
        yield client


def test_the_verification_handshake_echoes_the_challenge_only_for_our_token(app):
    ok = app.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN,
                                           "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = app.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                              "hub.challenge": "1158201444"})
    assert wrong.status_code == 401 and "1158201444" not in wrong.text
    assert app.get("/webhooks/meta").status_code == 400


def test_the_shared_fixture_verifies_with_the_documented_signature(app, resources):
    raw = (META_FIXTURES / "meta_text.json").read_bytes()
    documented = "sha256=1603bec93f8c5ce5b475c4104aea15fd139cf5c16198cf087b9b060aa4bed7ca"
    r = _post(app, raw, documented)
    assert r.status_code == 200 and r.json()["outcome"] == "stored"
    assert _post(app, raw, documented).json()["outcome"] == "duplicate"     # Meta retries: stored once
    assert _count(resources.db, "SELECT count(*) AS n FROM webhook_events WHERE provider = 'meta_cloud'") == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_a_forged_or_missing_signature_writes_nothing(app, resources, signature):
    r = _post(app, _text_body("hello", 1), signature)
    assert r.status_code == 401
    assert _count(resources.db, "SELECT count(*) AS n FROM webhook_events") == 0


def test_a_body_signed_for_another_app_writes_nothing(app, resources):
    body = _text_body("hello", 1)
    assert _post(app, body, meta_signature(body, "another-apps-secret")).status_code == 401
    unknown = body.replace(META_PHONE_NUMBER_ID.encode(), b"199999999999999")
    assert _post(app, unknown).status_code == 401
    assert _count(resources.db, "SELECT count(*) AS n FROM webhook_events") == 0


def test_a_customer_is_answered_through_the_graph_api_and_statuses_move_forward(app, resources, fake_graph_api):
    assert _post(app, _text_body("I want a 2 bedroom apartment for rent in Maadi", 1)).status_code == 200
    [call] = wait_for(lambda: [c for c in fake_graph_api.calls() if c["body"].get("type") == "text"])
    assert call["authorization"] == f"Bearer {fake_graph_api.token}"
    assert call["body"]["to"] == CUSTOMER and call["body"]["messaging_product"] == "whatsapp"
    assert "Mona" in call["body"]["text"]["body"]

    def recorded():
        with resources.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT provider_message_id, directive_versions FROM messages WHERE author = 'ai' "
                        "AND provider_message_id IS NOT NULL")
            return cur.fetchall()

    sent = wait_for(recorded)
    wamid = sent[0]["provider_message_id"]
    assert sent[0]["directive_versions"] == SNAPSHOT.versions()
    status = json.loads((META_FIXTURES / "meta_status.json").read_text())
    status["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid
    assert _post(app, json.dumps(status).encode()).status_code == 200

    def delivery():
        with resources.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT delivery_status FROM messages WHERE provider_message_id = %s", (wamid,))
            return cur.fetchone()["delivery_status"]

    wait_for(lambda: delivery() == "delivered")


def test_a_batched_body_stores_each_event_of_our_number_once(app, resources):
    from execution.lib.providers.meta_cloud import MetaCloudProvider

    raw = (META_FIXTURES / "meta_batch.json").read_bytes()
    envelopes = MetaCloudProvider.envelopes(json.loads(raw))
    ours = [e for e in envelopes if e.instance_key == META_PHONE_NUMBER_ID]
    assert len(ours) >= 2 and len(envelopes) > len(ours)     # the batch also names a number not connected here
    r = _post(app, raw)
    assert r.status_code == 200 and r.json()["events"] == len(ours)
    assert _post(app, raw).json()["outcome"] == "duplicate"
    assert _count(resources.db, "SELECT count(*) AS n FROM webhook_events") == len(ours)


def test_outside_the_window_only_a_template_goes(resources, meta_channel, fake_graph_api, capsys):
    with resources.db.transaction() as c:
        from execution.identify_conversation import identify_conversation

        convo = identify_conversation(c, channel=meta_channel, chat_id=CUSTOMER)
        with c.cursor() as cur:
            cur.execute("UPDATE conversations SET last_inbound_at = now() - interval '25 hours' WHERE id = %s",
                        (convo["id"],))
    registry = ProviderRegistry(secret_key=resources.settings.secret_key)

    def send(key, content):
        return send_whatsapp_message(resources.db, resources.redis, registry, snapshot=SNAPSHOT,
                                     conversation_id=convo["id"], idempotency_key=key, author="agent", content=content)

    refused = send("agent:late", OutboundContent(text="Still interested?"))
    assert refused.outcome is SendOutcome.OUTSIDE_WINDOW and refused.error.startswith("outside_window")
    assert fake_graph_api.calls() == []
    assert _count(resources.db, "SELECT count(*) AS n FROM outbox") == 0
    template = send("agent:reminder", OutboundContent(kind="template", name="viewing_reminder", language="en_US",
                                                      parameters=("Tomorrow 10:00",)))
    assert template.outcome is SendOutcome.SENT
    [call] = fake_graph_api.calls()
    assert call["body"]["type"] == "template" and call["body"]["template"]["name"] == "viewing_reminder"
    assert call["body"]["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Tomorrow 10:00"}]
    assert send_cmd.main(["--conversation", str(convo["id"]), "--text", "hi"], resources=resources) == 65
    assert "outside_window" in capsys.readouterr().err
    with resources.db.connection() as c:    # a new customer message opens the window again
        conversation_store.touch_conversation(c, conversation_id=convo["id"], inbound=True)
    assert send("agent:inside", OutboundContent(text="Yes, here it is")).outcome is SendOutcome.SENT


def test_a_status_naming_our_key_settles_a_send_whose_answer_a_crash_lost(app, resources, fake_graph_api):
    assert _post(app, _text_body("I want a 2 bedroom apartment for rent in Maadi", 1)).status_code == 200
    [call] = wait_for(lambda: [c for c in fake_graph_api.calls() if c["body"].get("type") == "text"])
    key = call["body"]["biz_opaque_callback_data"]
    assert key.startswith("reply:")                             # our outbox key rides with the send
    with resources.db.connection() as conn, conn.cursor() as cur:   # as if the sender died before recording
        wait_for(lambda: _count(resources.db, "SELECT count(*) AS n FROM outbox WHERE status = 'sent'") == 1)
        cur.execute("UPDATE outbox SET status = 'pending', provider_message_id = NULL, "
                    "claimed_until = now() + interval '1 minute'")
        cur.execute("UPDATE messages SET provider_message_id = NULL, delivery_status = 'pending' "
                    "WHERE outbox_id IS NOT NULL")
    status = json.loads((META_FIXTURES / "meta_status.json").read_text())
    entry = status["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry.update({"id": "wamid.LOSTANSWER01", "status": "sent", "biz_opaque_callback_data": key})
    assert _post(app, json.dumps(status).encode()).status_code == 200
    wait_for(lambda: _count(resources.db, "SELECT count(*) AS n FROM outbox WHERE status = 'sent' "
                                          "AND provider_message_id = 'wamid.LOSTANSWER01'") == 1)
