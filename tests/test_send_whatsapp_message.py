import json
import logging
import threading
import time

import pytest

from execution import send_whatsapp_message as cmd
from execution.identify_conversation import identify_conversation
from execution.lib.formatting import location_pin
from execution.lib.providers import ProviderRegistry
from execution.lib.providers.green_api import GreenApiProvider
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.set_mode_human import set_mode_human
from tests.conftest import SNAPSHOT


@pytest.fixture
def conversation(resources, green_channel):
    with resources.db.connection() as c:
        return identify_conversation(c, channel=green_channel, chat_id="15550000001@c.us", display_name="Mona")


@pytest.fixture
def registry(green_channel, fake_green_api):
    provider = GreenApiProvider(api_url=fake_green_api.url, id_instance=fake_green_api.instance_id,
                                api_token=fake_green_api.token, backoff_s=0.01, read_timeout_s=0.5)
    return ProviderRegistry(secret_key="unused", overrides={green_channel["id"]: provider})


def send(resources, registry, conversation, key, text="Hello", author="agent", **kw):
    pace = SNAPSHOT.with_values("message_sending_rules", send_interval_ms={"green_api": kw.pop("pace_ms", 0)})
    return send_whatsapp_message(resources.db, resources.redis, registry, snapshot=pace,
                                 conversation_id=conversation["id"], idempotency_key=key, author=author,
                                 content=OutboundContent(text=text), **kw)


def _outbox(db):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT o.status, o.provider_message_id, o.last_error, m.delivery_status "
                    "FROM outbox o JOIN messages m ON m.outbox_id = o.id ORDER BY o.id")
        return cur.fetchall()


def test_sends_through_green_api_and_records_the_id(resources, registry, conversation, fake_green_api):
    report = send(resources, registry, conversation, "agent:1", text="Three flats match ✨")
    assert report.outcome is SendOutcome.SENT and report.provider_message_id.startswith("FAKE")
    [call] = fake_green_api.calls("sendMessage")
    assert call["body"] == {"chatId": "15550000001@c.us", "message": "Three flats match ✨"} and call["token_ok"]
    assert _outbox(resources.db) == [{"status": "sent", "provider_message_id": report.provider_message_id,
                                      "last_error": None, "delivery_status": "pending"}]


def test_same_key_sends_once(resources, registry, conversation, fake_green_api):
    first = send(resources, registry, conversation, "reply:77")
    second = send(resources, registry, conversation, "reply:77")
    assert second.outcome is SendOutcome.DUPLICATE and second.outbox_id == first.outbox_id
    assert len(fake_green_api.calls("sendMessage")) == 1


def test_same_key_racing_from_threads_sends_once(resources, registry, conversation, fake_green_api):
    outcomes, barrier = [], threading.Barrier(6)

    def go():
        barrier.wait()
        outcomes.append(send(resources, registry, conversation, "reply:race").outcome)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.value for o in outcomes) == ["duplicate"] * 5 + ["sent"]
    assert len(fake_green_api.calls("sendMessage")) == 1


def test_429_and_5xx_are_retried_with_a_bound(resources, registry, conversation, fake_green_api):
    fake_green_api.plan("sendMessage", 429, 502, 200)
    assert send(resources, registry, conversation, "k1").outcome is SendOutcome.SENT
    assert len(fake_green_api.calls("sendMessage")) == 3
    with resources.db.connection() as c, c.cursor() as cur:     # every HTTP request counts as an attempt
        cur.execute("SELECT attempts FROM outbox WHERE idempotency_key = 'k1'")
        assert cur.fetchone()["attempts"] == 3
    fake_green_api.plan("sendMessage", 500, 500, 500, 500)
    report = send(resources, registry, conversation, "k2")
    # Not taken after a bounded 3 attempts: queued for reconcile_outbox to retry, never dropped as failed.
    assert report.outcome is SendOutcome.QUEUED and "500" in report.error
    assert len(fake_green_api.calls("sendMessage")) == 6  # 3 + 3 attempts, not more
    assert _outbox(resources.db)[-1]["status"] == "retrying"


def test_other_4xx_is_not_retried(resources, registry, conversation, fake_green_api):
    fake_green_api.plan("sendMessage", (400, {"error": "Bad Request Validation failed"}))
    report = send(resources, registry, conversation, "k3")
    assert report.outcome is SendOutcome.FAILED and "400" in report.error
    assert len(fake_green_api.calls("sendMessage")) == 1


def test_quota_466_is_surfaced(resources, registry, conversation, fake_green_api):
    fake_green_api.plan("sendMessage", 466)
    report = send(resources, registry, conversation, "k4")
    assert report.outcome is SendOutcome.QUOTA_EXCEEDED and "CORRESPONDENTS_QUOTE_EXCEEDED" in report.error
    assert _outbox(resources.db)[0]["status"] == "failed"


def test_timeout_is_unknown_and_not_resent(resources, registry, conversation, fake_green_api):
    fake_green_api.plan("sendMessage", ("slow", 1.5))
    report = send(resources, registry, conversation, "k5")
    assert report.outcome is SendOutcome.UNKNOWN
    assert _outbox(resources.db)[0]["status"] == "unknown"
    again = send(resources, registry, conversation, "k5")
    assert again.outcome is SendOutcome.DUPLICATE
    assert len(fake_green_api.calls("sendMessage")) == 1


def test_file_and_location(resources, registry, conversation, fake_green_api):
    send_whatsapp_message(resources.db, None, registry, snapshot=SNAPSHOT, conversation_id=conversation["id"], idempotency_key="f1",
                          author="agent", content=OutboundContent(kind="file", url="https://example.com/a.jpg",
                                                                  file_name="a.jpg", text="Living room"))
    send_whatsapp_message(resources.db, None, registry, snapshot=SNAPSHOT, conversation_id=conversation["id"], idempotency_key="l1",
                          author="agent", content=OutboundContent(kind="location", latitude=30.0, longitude=31.2,
                                                                  name="Amber Court"))
    assert fake_green_api.calls("sendFileByUrl")[0]["body"] == {
        "chatId": "15550000001@c.us", "urlFile": "https://example.com/a.jpg", "fileName": "a.jpg",
        "caption": "Living room"}
    assert fake_green_api.calls("sendLocation")[0]["body"] == {
        "chatId": "15550000001@c.us", "latitude": 30.0, "longitude": 31.2, "nameLocation": "Amber Court"}


def test_a_listing_pin_goes_out_as_send_location(resources, registry, conversation, fake_green_api):
    listing = {"reference": "NH-0001", "project_name": "Amber Court", "district": "Maadi", "city": "Cairo",
               "latitude": 29.95515, "longitude": 31.26244}
    pin = location_pin(listing, lang="en")
    report = send_whatsapp_message(resources.db, None, registry, snapshot=SNAPSHOT, conversation_id=conversation["id"],
                                   idempotency_key="pin:NH-0001", author="ai", content=OutboundContent(**pin),
                                   expected_mode_version=conversation["mode_version"])
    assert report.outcome is SendOutcome.SENT
    assert fake_green_api.calls("sendLocation")[0]["body"] == {
        "chatId": "15550000001@c.us", "latitude": 29.95515, "longitude": 31.26244,
        "nameLocation": "Amber Court (NH-0001)", "address": "Maadi, Cairo"}


def test_the_fence_suppresses_an_ai_draft_after_takeover(resources, registry, conversation, fake_green_api):
    read_version = conversation["mode_version"]
    with resources.db.connection() as c:
        set_mode_human(c, snapshot=SNAPSHOT, conversation_id=conversation["id"], actor="inbox", reason="test")
    report = send(resources, registry, conversation, "reply:5", author="ai", expected_mode_version=read_version)
    assert report.outcome is SendOutcome.SUPPRESSED
    assert fake_green_api.calls() == []
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM outbox")
        assert cur.fetchone()["n"] == 0
        cur.execute("SELECT delivery_status, body FROM messages WHERE author = 'ai'")
        assert cur.fetchone() == {"delivery_status": "suppressed", "body": "Hello"}


def test_ai_send_with_the_current_version_goes_out(resources, registry, conversation, fake_green_api):
    report = send(resources, registry, conversation, "reply:6", author="ai",
                  expected_mode_version=conversation["mode_version"])
    assert report.outcome is SendOutcome.SENT


def test_pacing_spaces_sends_and_drops_none(resources, registry, conversation, fake_green_api):
    started = time.monotonic()
    outcomes = [send(resources, registry, conversation, f"p{i}", pace_ms=150).outcome for i in range(4)]
    elapsed = time.monotonic() - started
    assert outcomes == [SendOutcome.SENT] * 4
    assert elapsed >= 0.45  # 3 waits of 150 ms between 4 sends
    assert len(fake_green_api.calls("sendMessage")) == 4


def test_token_never_reaches_the_logs(resources, registry, conversation, fake_green_api, caplog):
    caplog.set_level(logging.DEBUG)
    fake_green_api.plan("sendMessage", 500, 500, 500, ("slow", 1.0))
    send(resources, registry, conversation, "t1")
    send(resources, registry, conversation, "t2")
    text = caplog.text + json.dumps(_outbox(resources.db), default=str)
    assert fake_green_api.token not in text


def test_echo_of_our_send_is_reconciled(resources, registry, conversation, fake_green_api, green_channel):
    from execution.worker import run_once
    from tests.conftest import load_fixture, post_green_api

    report = send(resources, registry, conversation, "reply:echo")
    echo = load_fixture("greenapi_outgoing_api.json")
    echo["idMessage"] = report.provider_message_id
    post_green_api(resources.db, echo)
    status = load_fixture("greenapi_status_read.json")
    status["idMessage"] = report.provider_message_id
    post_green_api(resources.db, status)
    delivered = load_fixture("greenapi_status_delivered.json")
    delivered["idMessage"] = report.provider_message_id
    post_green_api(resources.db, delivered)
    outcomes = [r.outcome.value for r in run_once(resources.db, snapshot=SNAPSHOT).results]
    assert outcomes == ["reconciled", "status_updated", "status_unchanged"]
    assert _outbox(resources.db)[0]["delivery_status"] == "read"  # never back to delivered
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT mode FROM conversations WHERE id = %s", (conversation["id"],))
        assert cur.fetchone()["mode"] == "AI"


def test_failed_status_is_terminal_and_keeps_its_description(resources, registry, conversation, green_channel):
    from execution.lib import message_store

    report = send(resources, registry, conversation, "reply:na")
    with resources.db.transaction() as c:
        kw = {"channel_id": green_channel["id"], "provider_message_id": report.provider_message_id}
        assert message_store.update_delivery_status(c, status="no_account", detail="SWE004: 1000", **kw) == 1
        assert message_store.update_delivery_status(c, status="read", detail=None, **kw) == 0
        cur = c.cursor()
        cur.execute("SELECT delivery_status, status_detail FROM messages WHERE outbox_id = %s", (report.outbox_id,))
        assert cur.fetchone() == {"delivery_status": "no_account", "status_detail": "SWE004: 1000"}


def test_cli_sends_as_the_agent(resources, registry, conversation, fake_green_api, capsys):
    code = cmd.main(["--conversation", str(conversation["id"]), "--text", "On my way", "--key", "agent:cli-1"],
                    resources=resources, providers=registry)
    assert code == 0 and json.loads(capsys.readouterr().out)["outcome"] == "sent"
    assert cmd.main(["--conversation", "999999", "--text", "x"], resources=resources, providers=registry) == 4
