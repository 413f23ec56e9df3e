"""Once the webhook of an agent's phone reply is acknowledged, the assistant does not speak in that chat,
however long the worker's backlog is."""

import time

from execution.answer_conversation import Answer
from execution.answer_due import answer_due
from execution.lib.providers import ProviderRegistry
from execution.worker import drain, run_once
from tests.conftest import SNAPSHOT, load_fixture, post_green_api

CHAT = "15550000001@c.us"


def _customer(text, n, chat=CHAT):
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"TAKE{n:08d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


def _phone_reply(n):
    body = load_fixture("greenapi_outgoing_from_phone.json")
    body["idMessage"] = f"PHONE{n:08d}"
    body["senderData"]["chatId"] = CHAT
    return body


def _registry(resources):
    return ProviderRegistry(secret_key=resources.settings.secret_key)


def test_an_acknowledged_phone_reply_stops_the_assistant_before_the_worker_applies_it(resources, green_channel,
                                                                                      fake_green_api):
    post_green_api(resources.db, _customer("flat in Maadi?", 1))
    run_once(resources.db, snapshot=SNAPSHOT)                         # the reply is now due
    post_green_api(resources.db, _phone_reply(1))                     # acknowledged, not yet applied
    [report] = answer_due(resources.db, resources.redis, _registry(resources), snapshot=SNAPSHOT)
    assert (report.answer, report.kind) == (Answer.BUSY, "deferred")
    assert fake_green_api.calls("sendMessage") == []
    drain(resources.db, snapshot=SNAPSHOT)                            # the worker catches up: HUMAN now
    time.sleep(0.35)                                                  # the deferral is 0.3 s
    reports = answer_due(resources.db, resources.redis, _registry(resources), snapshot=SNAPSHOT)
    assert [r.answer for r in reports] in ([Answer.HUMAN], [])
    assert fake_green_api.calls("sendMessage") == []


def test_a_newer_customer_message_in_the_backlog_is_waited_for_then_answered_together(resources, green_channel,
                                                                                     fake_green_api):
    post_green_api(resources.db, _customer("hi", 1))
    run_once(resources.db, snapshot=SNAPSHOT)
    post_green_api(resources.db, _customer("a 2 bedroom flat in Maadi for rent", 2))   # not applied yet
    [report] = answer_due(resources.db, resources.redis, _registry(resources), snapshot=SNAPSHOT)
    assert report.kind == "deferred" and fake_green_api.calls("sendMessage") == []
    drain(resources.db, snapshot=SNAPSHOT)
    [report] = answer_due(resources.db, resources.redis, _registry(resources), snapshot=SNAPSHOT,
                          conversation_id=report.conversation_id)
    assert report.answer is Answer.REPLIED
    assert len(fake_green_api.calls("sendMessage")) == 1              # one reply, to both messages
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT preferences FROM conversations WHERE id = %s", (report.conversation_id,))
        assert "maadi" in str(cur.fetchone()["preferences"]).lower()  # the later message was read too


def test_other_chats_backlog_does_not_hold_a_chat_back(resources, green_channel, fake_green_api):
    post_green_api(resources.db, _customer("a 2 bedroom flat in Maadi for rent", 1))
    run_once(resources.db, snapshot=SNAPSHOT)
    for n in range(200):                                              # a backlog of other chats' messages
        post_green_api(resources.db, _customer("hello", 100 + n, chat=f"1555001{n:04d}@c.us"))
    [report] = answer_due(resources.db, resources.redis, _registry(resources), snapshot=SNAPSHOT, limit=1)
    assert report.answer is Answer.REPLIED and len(fake_green_api.calls("sendMessage")) == 1


def test_statuses_and_echoes_waiting_in_the_backlog_do_not_hold_a_reply(resources, green_channel, fake_green_api):
    post_green_api(resources.db, _customer("a 2 bedroom flat in Maadi for rent", 1))
    run_once(resources.db, snapshot=SNAPSHOT)
    status = load_fixture("greenapi_status_delivered.json")
    status["chatId"] = CHAT
    post_green_api(resources.db, status)
    echo = load_fixture("greenapi_outgoing_api.json")
    echo["senderData"]["chatId"] = CHAT
    post_green_api(resources.db, echo)
    [report] = answer_due(resources.db, resources.redis, _registry(resources), snapshot=SNAPSHOT, limit=1)
    assert report.answer is Answer.REPLIED
