"""Nothing is left pending forever: outages are retried in order until a horizon, crashes are settled from the provider."""

import pytest

from execution import reconcile_outbox as cmd
from execution.identify_conversation import identify_conversation
from execution.lib.providers import ProviderRegistry
from execution.lib.providers.green_api import GreenApiProvider
from execution.reconcile_outbox import reconcile_outbox
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.set_mode_human import set_mode_human
from execution.worker import run_once
from tests.conftest import SNAPSHOT, load_fixture, post_green_api


@pytest.fixture
def registry(green_channel, fake_green_api):
    provider = GreenApiProvider(api_url=fake_green_api.url, id_instance=fake_green_api.instance_id,
                                api_token=fake_green_api.token, backoff_s=0.01, read_timeout_s=0.5)
    return ProviderRegistry(secret_key="unused", overrides={green_channel["id"]: provider})


@pytest.fixture
def chats(resources, green_channel):
    with resources.db.transaction() as c:
        return [identify_conversation(c, channel=green_channel, chat_id=f"1555000000{n}@c.us") for n in (1, 2)]


def _send(resources, registry, convo, key, text, author="agent"):
    return send_whatsapp_message(resources.db, resources.redis, registry, snapshot=SNAPSHOT,
                                 conversation_id=convo["id"], idempotency_key=key, author=author,
                                 content=OutboundContent(text=text),
                                 expected_mode_version=convo["mode_version"] if author == "ai" else None)


def _sql(resources, sql, params=()):
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _outbox(resources):
    return _sql(resources, "SELECT idempotency_key AS key, status, provider_message_id AS pmid FROM outbox ORDER BY id")


def _sent_texts(fake):
    return [c["body"]["message"] for c in fake.calls("sendMessage") if c.get("id_message")]


def _due_now(resources):
    _sql(resources, "UPDATE outbox SET next_attempt_at = now() WHERE status = 'retrying'")


def test_an_outage_queues_replies_and_they_go_out_once_in_order_when_it_ends(resources, registry, chats,
                                                                              fake_green_api):
    fake_green_api.plan("sendMessage", *[503] * 3)
    assert _send(resources, registry, chats[0], "agent:1", "first").outcome is SendOutcome.QUEUED
    # The channel has a queued send: later ones wait behind it, whoever they are for.
    assert _send(resources, registry, chats[1], "agent:2", "second").outcome is SendOutcome.QUEUED
    assert _send(resources, registry, chats[0], "agent:3", "third").outcome is SendOutcome.QUEUED
    assert [r["status"] for r in _outbox(resources)] == ["retrying"] * 3
    assert len(fake_green_api.calls("sendMessage")) == 3           # only the first one tried, 3 bounded attempts
    fake_green_api.plan("sendMessage", *[503] * 3)
    _due_now(resources)
    assert reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT).outcomes == ["queued"]
    channel = _sql(resources, "SELECT send_failures, last_send_error FROM channels")[0]
    assert channel["send_failures"] == 2 and "503" in channel["last_send_error"]
    for _ in range(3):                                               # the provider is back
        _due_now(resources)
        reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert _sent_texts(fake_green_api) == ["first", "second", "third"]
    assert [r["status"] for r in _outbox(resources)] == ["sent"] * 3
    assert _sql(resources, "SELECT send_failures FROM channels")[0]["send_failures"] == 0
    assert reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT).resent == 0


def test_past_the_horizon_a_send_fails_and_the_agent_is_flagged(resources, registry, chats, fake_green_api):
    fake_green_api.plan("sendMessage", *[503] * 3)
    _send(resources, registry, chats[0], "agent:1", "hello")
    _sql(resources, "UPDATE outbox SET give_up_at = now() - interval '1 second'")
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.expired == 1 and _outbox(resources)[0]["status"] == "failed"
    row = _sql(resources, "SELECT m.delivery_status, c.needs_attention FROM messages m "
                          "JOIN conversations c ON c.id = m.conversation_id WHERE m.outbox_id IS NOT NULL")[0]
    assert row == {"delivery_status": "failed", "needs_attention": True}


def _strand(resources, *, age="5 minutes"):
    """What a sender that died mid-send leaves: pending, no provider id, its claim run out."""
    _sql(resources, "UPDATE outbox SET status = 'pending', provider_message_id = NULL, "
                    "claimed_until = now() - interval '1 second', created_at = now() - %s::interval, "
                    "attempt_started_at = now() - %s::interval", (age, age))
    _sql(resources, "UPDATE messages SET provider_message_id = NULL, delivery_status = 'pending' "
                    "WHERE outbox_id IS NOT NULL")


def test_a_send_the_provider_took_before_the_crash_is_settled_not_resent(resources, registry, chats, fake_green_api):
    sent = _send(resources, registry, chats[0], "reply:1", "Here are 3 flats")
    _strand(resources)
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.settled == 1 and report.resent == 0
    assert _outbox(resources) == [{"key": "reply:1", "status": "sent", "pmid": sent.provider_message_id}]
    assert len(fake_green_api.calls("sendMessage")) == 1


def test_a_send_the_provider_never_got_is_sent_once(resources, registry, chats, fake_green_api):
    fake_green_api.plan("sendMessage", ("slow", 0.0))      # recorded below as never having gone out
    _send(resources, registry, chats[0], "reply:1", "Here are 3 flats")
    fake_green_api.requests.clear()                         # the provider has no trace of it
    _strand(resources)
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.resent == 1 and report.outcomes == ["sent"]
    assert _sent_texts(fake_green_api) == ["Here are 3 flats"]
    assert _outbox(resources)[0]["status"] == "sent"
    assert reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT).resent == 0


def test_a_young_stranded_send_waits_for_the_providers_journal(resources, registry, chats, fake_green_api):
    _send(resources, registry, chats[0], "reply:1", "Here are 3 flats")
    fake_green_api.requests.clear()
    _strand(resources, age="10 seconds")                    # the journal may not show it yet
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.waiting == 1 and report.resent == 0 and fake_green_api.calls("sendMessage") == []


def test_a_stranded_send_the_provider_cannot_account_for_becomes_unknown_and_flagged(resources, meta_channel):
    with resources.db.transaction() as c:
        convo = identify_conversation(c, channel=meta_channel, chat_id="15550000001")
        with c.cursor() as cur:
            cur.execute("UPDATE conversations SET last_inbound_at = now() WHERE id = %s", (convo["id"],))
    registry = ProviderRegistry(secret_key=resources.settings.secret_key)
    _send(resources, registry, convo, "reply:1", "Here are 3 flats")
    _strand(resources, age="11 minutes")                    # past unknown_after_s; Meta has no journal
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.unknown == 1 and _outbox(resources)[0]["status"] == "unknown"
    assert _sql(resources, "SELECT needs_attention FROM conversations")[0]["needs_attention"] is True


def test_a_queued_ai_reply_never_goes_out_after_a_takeover(resources, registry, chats, fake_green_api):
    fake_green_api.plan("sendMessage", *[503] * 3)
    assert _send(resources, registry, chats[0], "reply:1", "AI draft", author="ai").outcome is SendOutcome.QUEUED
    with resources.db.connection() as c:
        set_mode_human(c, snapshot=SNAPSHOT, conversation_id=chats[0]["id"], actor="inbox", reason="test")
    _due_now(resources)
    report = reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert report.suppressed == 1 and _outbox(resources)[0]["status"] == "suppressed"
    assert _sent_texts(fake_green_api) == []
    row = _sql(resources, "SELECT delivery_status FROM messages WHERE author = 'ai'")[0]
    assert row["delivery_status"] == "suppressed"


def test_the_echo_of_a_stranded_send_settles_it_as_ours(resources, registry, chats, fake_green_api, green_channel):
    _send(resources, registry, chats[0], "reply:1", "Here are 3 flats")
    pmid = fake_green_api.calls("sendMessage")[0]["id_message"]
    _strand(resources, age="5 seconds")
    echo = load_fixture("greenapi_outgoing_api.json")
    echo["idMessage"] = pmid
    echo["senderData"]["chatId"] = chats[0]["chat_id"]
    echo["messageData"] = {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Here are 3 flats"}}
    post_green_api(resources.db, echo)
    [result] = run_once(resources.db, snapshot=SNAPSHOT).results
    assert result.outcome.value == "reconciled"
    assert _outbox(resources) == [{"key": "reply:1", "status": "sent", "pmid": pmid}]
    assert _sql(resources, "SELECT count(*) AS n FROM messages WHERE author = 'system'")[0]["n"] == 0


def test_the_cli_runs_one_pass(resources, capsys):
    assert cmd.main([], resources=resources) == 0
    assert '"resent": 0' in capsys.readouterr().out


def test_the_backlog_and_a_failing_channel_show_in_health_and_the_command(resources, registry, chats,
                                                                          fake_green_api, capsys):
    import json

    from fastapi.testclient import TestClient

    from execution import check_backlog
    from main import create_app
    from tests.conftest import StaticDirectives

    fake_green_api.plan("sendMessage", *[503] * 9)
    for n in range(3):                                   # three sends refused in a row
        _send(resources, registry, chats[0], f"agent:{n}", f"hello {n}")
        _due_now(resources)
        if n < 2:
            reconcile_outbox(resources.db, resources.redis, registry, snapshot=SNAPSHOT)
    assert check_backlog.main([], resources=resources) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["channel_id"] for c in report["failing_channels"]] == [chats[0]["channel_id"]]
    assert report["sends_queued"][0]["queued"] == 3
    with TestClient(create_app(resources, run_worker=False, directives=StaticDirectives())) as client:
        body = client.get("/health").json()
    assert body["status"] == "degraded" and "cannot send" in body["reason"]
    assert body["backlog"]["failing_channels"][0]["send_failures"] >= 3


def test_a_logged_out_instance_shows_as_failing(resources, green_channel):
    from execution.check_backlog import check_backlog

    post_green_api(resources.db, load_fixture("greenapi_state_changed.json"))      # notAuthorized
    run_once(resources.db, snapshot=SNAPSHOT)
    with resources.db.connection() as conn:
        [failing] = check_backlog(conn).failing_channels
    assert (failing["channel_id"], failing["provider_state"]) == (green_channel["id"], "notAuthorized")
