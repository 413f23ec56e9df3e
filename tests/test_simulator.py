"""The customer simulator: a chat through the real webhook route, answered from the sandbox channel."""

import dataclasses
import time

from fastapi.testclient import TestClient

from execution.lib.resources import Resources
from execution.seed_demo import seed_demo
from main import create_app


def _payload(instance_id, chat_id, text, n):
    return {
        "typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": int(instance_id), "wid": f"{instance_id}@c.us", "typeInstance": "whatsapp"},
        "timestamp": 1703014480 + n, "idMessage": f"SIM{n:020d}",
        "senderData": {"chatId": chat_id, "chatName": "Sim", "sender": chat_id, "senderName": "Sim"},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
    }


def _reply(client, channel_id, chat_id, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get("/simulator/api/messages", params={"channel_id": channel_id, "chat_id": chat_id}).json()
        replies = [m for m in data["messages"] if m["author"] != "customer"]
        if replies:
            return data, replies
        time.sleep(0.1)
    raise AssertionError("no reply in time")


def test_a_customer_chats_in_three_languages_and_a_discount_hands_over(resources):
    with resources.db.connection() as conn:
        seed_demo(conn, email="sara@nile-homes.example", password="pw-long-enough", secret_key=resources.settings.secret_key)
    with TestClient(create_app(resources, run_worker=True)) as client:
        page = client.get("/simulator")
        assert page.status_code == 200 and 'id="form"' in page.text
        agents = client.get("/simulator/api/agents").json()
        assert [a["agent_name"] for a in agents] == ["Sara", "Omar"]
        sara = agents[0]
        auth = {"Authorization": f"Bearer {sara['token']}"}
        for n, (text, expect) in enumerate([
            ("I want to rent a flat in Maadi", "for rent in Maadi"),
            ("عايز شقة للإيجار في المعادي", "للإيجار في المعادي"),
            ("3ayez sha2a egar fel maadi", "for rent in Maadi"),
        ]):
            chat = f"2010000000{n}@c.us"
            r = client.post("/webhooks/green-api", json=_payload(sara["instance_id"], chat, text, n), headers=auth)
            assert r.status_code == 200, r.text
            data, replies = _reply(client, sara["channel_id"], chat)
            assert "NH-0052" in replies[0]["body"] and expect in replies[0]["body"], replies[0]["body"]
            assert data["mode"] == "AI"
        chat = "20100000009@c.us"
        client.post("/webhooks/green-api", json=_payload(sara["instance_id"], chat, "can I get a discount?", 9), headers=auth)
        data, replies = _reply(client, sara["channel_id"], chat)
        assert "handles prices personally" in replies[0]["body"]
        deadline = time.monotonic() + 5
        while data["mode"] != "HUMAN" and time.monotonic() < deadline:
            time.sleep(0.1)
            data = client.get("/simulator/api/messages", params={"channel_id": sara["channel_id"], "chat_id": chat}).json()
        assert (data["mode"], data["mode_reason"]) == ("HUMAN", "escalation:price_negotiation")
        # A forged token is refused by the real route.
        bad = client.post("/webhooks/green-api", json=_payload(sara["instance_id"], chat, "x", 10),
                          headers={"Authorization": "Bearer forged"})
        assert bad.status_code == 401


def test_the_simulator_is_off_in_production(resources):
    settings = dataclasses.replace(resources.settings, app_env="production")
    prod = Resources(settings, resources.db, resources.redis, "test", "test")
    with TestClient(create_app(prod, run_worker=False)) as client:
        assert client.get("/simulator").status_code == 404
        assert client.get("/simulator/api/agents").status_code == 404
