"""The responder answers many conversations at once: a slow reply holds no other conversation back."""

import threading

from execution import answer_conversation as answering
from execution.answer_due import Responder
from execution.lib.providers import ProviderRegistry
from execution.worker import run_once
from tests.conftest import SNAPSHOT, StaticDirectives, load_fixture, post_green_api
from tests.waiting import wait_for


def _customer(chat, n):
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"POOL{n:08d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    return body


def test_a_slow_reply_does_not_hold_back_another_conversation(resources, green_channel, fake_green_api, monkeypatch):
    slow_chat, quick_chat = "15550000001@c.us", "15550000002@c.us"
    release = threading.Event()
    real_generate = answering.generate_ai_response

    def generate(conn, *, conversation, **kw):
        if conversation["chat_id"] == slow_chat:
            assert release.wait(15), "the slow reply was never released"
        return real_generate(conn, conversation=conversation, **kw)

    monkeypatch.setattr(answering, "generate_ai_response", generate)
    post_green_api(resources.db, _customer(slow_chat, 1))
    run_once(resources.db, snapshot=SNAPSHOT)                  # the slow one is due first
    responder = Responder(resources.db, resources.redis, ProviderRegistry(secret_key=resources.settings.secret_key),
                          directives=StaticDirectives(), pool_size=2, idle_s=0.05).start()
    try:
        post_green_api(resources.db, _customer(quick_chat, 2))
        run_once(resources.db, snapshot=SNAPSHOT)
        sent = wait_for(lambda: [c["body"]["chatId"] for c in fake_green_api.calls("sendMessage")])
        assert sent == [quick_chat]                             # answered while the other is still being written
        release.set()
        wait_for(lambda: len(fake_green_api.calls("sendMessage")) == 2)
    finally:
        release.set()
        responder.stop()


def test_the_pool_never_takes_more_than_it_can_answer(resources, green_channel, fake_green_api, monkeypatch):
    release = threading.Event()
    started = []
    real_generate = answering.generate_ai_response

    def generate(conn, *, conversation, **kw):
        started.append(conversation["id"])
        assert release.wait(15)
        return real_generate(conn, conversation=conversation, **kw)

    monkeypatch.setattr(answering, "generate_ai_response", generate)
    for n in range(3):
        post_green_api(resources.db, _customer(f"1555000001{n}@c.us", n))
    run_once(resources.db, snapshot=SNAPSHOT)
    responder = Responder(resources.db, resources.redis, ProviderRegistry(secret_key=resources.settings.secret_key),
                          directives=StaticDirectives(), pool_size=2, idle_s=0.05).start()
    try:
        wait_for(lambda: len(started) == 2)
        with resources.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM conversations WHERE reply_claim_until > now()")
            assert cur.fetchone()["n"] == 2                     # the third stays unclaimed for another process
        release.set()
        wait_for(lambda: len(fake_green_api.calls("sendMessage")) == 3)
    finally:
        release.set()
        responder.stop()
