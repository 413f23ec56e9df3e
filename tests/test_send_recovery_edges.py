"""Edges of the send path found in review: each once let a message go twice, go after a takeover, or stick."""

import pytest

from execution.identify_conversation import identify_conversation
from execution.lib.errors import BadRequest
from execution.lib.loop import PollingLoop
from execution.lib.providers import ProviderRegistry
from execution.lib.providers.green_api import GreenApiProvider
from execution.reconcile_outbox import reconcile_outbox
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.worker import drain, run_once
from tests.conftest import SNAPSHOT, load_fixture, post_green_api
from tests.waiting import wait_for

CHAT = "15550000001@c.us"


@pytest.fixture
def registry(green_channel, fake_green_api):
    provider = GreenApiProvider(api_url=fake_green_api.url, id_instance=fake_green_api.instance_id,
                                api_token=fake_green_api.token, backoff_s=0.001, read_timeout_s=0.5)
    return ProviderRegistry(secret_key="unused", overrides={green_channel["id"]: provider})


@pytest.fixture
def convo(resources, green_channel):
    post_green_api(resources.db, _customer())
    run_once(resources.db, snapshot=SNAPSHOT)
    with resources.db.transaction() as c:
        return identify_conversation(c, channel=green_channel, chat_id=CHAT)


def _customer(n=1):
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"EDGE{n:06d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = CHAT
    return body


def _sql(resources, sql, params=()):
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _send(resources, registry, convo, key, content, author="ai"):
    return send_whatsapp_message(resources.db, resources.redis, registry, snapshot=SNAPSHOT,
                                 conversation_id=convo["id"], idempotency_key=key, author=author, content=content,
                                 expected_mode_version=convo["mode_version"] if author == "ai" else None)


def test_a_queued_ai_reply_waits_for_an_acknowledged_phone_reply_and_never_goes(resources, registry, convo,
                                                                               fake_green_api):
    fake_green_api.plan("sendMessage", 503, 503, 503)
    assert _send(resources, registry, convo, "reply:1", OutboundContent(text="AI")).outcome is SendOutcome.QUEUED
    phone = load_fixture("greenapi_outgoing_from_phone.json")
    phone["senderData"]["chatId"] = CHAT
    post_green_api(resources.db, phone)                                 # acknowledged, not applied yet
    _sql(resources, "UPDATE outbox SET next_attempt_at = now()")
    reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert [c for c in fake_green_api.calls("sendMessage") if c.get("id_message")] == []
    assert _sql(resources, "SELECT status FROM outbox")[0]["status"] == "retrying"
    drain(resources.db, snapshot=SNAPSHOT)                              # the takeover applies: HUMAN
    _sql(resources, "UPDATE outbox SET next_attempt_at = now()")
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.suppressed == 1 and not [c for c in fake_green_api.calls("sendMessage") if c.get("id_message")]


def _strand(resources, key, age="5 minutes"):
    _sql(resources, "UPDATE outbox SET status = 'pending', provider_message_id = NULL, claimed_until = now() - "
                    "interval '1 second', attempt_started_at = now() - %s::interval WHERE idempotency_key = %s",
         (age, key))


def test_a_stranded_pin_is_never_matched_to_the_replys_journal_entry(resources, registry, convo, fake_green_api):
    _send(resources, registry, convo, "reply:1", OutboundContent(text="Here it is"))
    _send(resources, registry, convo, "pin:1", OutboundContent(kind="location", latitude=30.0, longitude=31.2))
    _strand(resources, "pin:1", age="11 minutes")
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.unknown == 1 and report.settled == 0            # told to the agent, not settled wrongly
    rows = {r["idempotency_key"]: r for r in _sql(resources, "SELECT * FROM outbox")}
    assert rows["pin:1"]["status"] == "unknown" and rows["reply:1"]["status"] == "sent"


def test_two_alike_unsettled_sends_are_not_settled_by_one_echo(resources, registry, convo, fake_green_api):
    for key in ("agent:a", "agent:b"):
        _send(resources, registry, convo, key, OutboundContent(text="On my way"), author="agent")
    pmid = fake_green_api.calls("sendMessage")[1]["id_message"]
    for key in ("agent:a", "agent:b"):
        _strand(resources, key, age="5 seconds")
    echo = load_fixture("greenapi_outgoing_api.json")
    echo.update({"idMessage": pmid})
    echo["senderData"]["chatId"] = CHAT
    echo["messageData"] = {"typeMessage": "textMessage", "textMessageData": {"textMessage": "On my way"}}
    post_green_api(resources.db, echo)
    run_once(resources.db, snapshot=SNAPSHOT, max_attempts=5)
    statuses = [r["status"] for r in _sql(resources, "SELECT status FROM outbox ORDER BY id")]
    assert statuses == ["pending", "pending"]                      # ambiguous: each is resolved on its own


def test_a_crash_on_a_long_queued_send_is_judged_from_its_last_attempt(resources, registry, convo, fake_green_api):
    _send(resources, registry, convo, "reply:1", OutboundContent(text="Here it is"))
    fake_green_api.requests.clear()                               # the journal does not show it yet
    _sql(resources, "UPDATE outbox SET created_at = now() - interval '20 minutes'")
    _strand(resources, "reply:1", age="10 seconds")               # written long ago, attempted just now
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.waiting == 1 and report.resent == 0 and report.unknown == 0


def test_an_idempotency_key_of_another_conversation_is_refused(resources, registry, convo, green_channel):
    with resources.db.transaction() as c:
        other = identify_conversation(c, channel=green_channel, chat_id="15550000009@c.us")
    _send(resources, registry, convo, "agent:shared", OutboundContent(text="hi"), author="agent")
    with pytest.raises(BadRequest):
        _send(resources, registry, other, "agent:shared", OutboundContent(text="hi"), author="agent")


def test_a_loop_survives_an_unexpected_error():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a bug in one step")
        return False

    loop = PollingLoop("test-loop", step, idle_s=0.01, max_backoff_s=0.05).start()
    try:
        wait_for(lambda: len(calls) >= 3, timeout=5)
    finally:
        loop.stop()


def test_a_re_registered_token_is_used_without_a_restart(resources, green_channel, fake_green_api):
    from execution.lib.security import encrypt_secret

    registry = ProviderRegistry(secret_key=resources.settings.secret_key)
    first = registry.for_channel(green_channel)
    assert registry.for_channel(green_channel) is first
    rotated = {**green_channel, "api_token_encrypted": encrypt_secret(resources.settings.secret_key, "new-token")}
    assert registry.for_channel(rotated) is not first


def test_a_disabled_channel_takes_no_webhooks(resources, green_channel):
    from execution.lib.errors import Unauthorized

    _sql(resources, "UPDATE channels SET status = 'disabled'")
    with pytest.raises(Unauthorized):
        post_green_api(resources.db, _customer(2))


def test_a_sender_that_died_before_calling_the_provider_is_replaced_at_once(resources, registry, convo,
                                                                           fake_green_api):
    _send(resources, registry, convo, "reply:1", OutboundContent(text="Here it is"))
    fake_green_api.requests.clear()
    _strand(resources, "reply:1", age="2 seconds")               # young: no journal could tell yet ...
    _sql(resources, "UPDATE outbox SET call_started_at = NULL")  # ... but the call never began
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.resent == 1 and len(fake_green_api.calls("sendMessage")) == 1


def test_a_live_responder_renews_its_claims_and_a_dead_ones_expire_soon(resources, convo):
    from execution.answer_due import CLAIM_LEASE_S
    from execution.lib import conversation_store

    with resources.db.transaction() as c:
        assert conversation_store.claim_due_replies(c, limit=5, lease_s=CLAIM_LEASE_S, conversation_id=convo["id"])
        conversation_store.extend_claims(c, conversation_ids=[convo["id"]], lease_s=CLAIM_LEASE_S)
    left = _sql(resources, "SELECT extract(epoch FROM reply_claim_until - now()) AS s FROM conversations")[0]["s"]
    assert 0 < left <= CLAIM_LEASE_S <= 30          # a dead responder's conversations wait seconds, not minutes
