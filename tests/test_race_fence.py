"""The takeover race with real commits: a takeover at a random moment while a slowed AI reply is written.

Both the fenced send and the takeover insert their timeline message while holding the conversation
row lock, so message ids give the order PostgreSQL committed them in: no AI message that went to
the outbox may come after the takeover's mode_change entry.
"""

import random
import threading
import time

import pytest

from execution import answer_conversation as answering
from execution.identify_conversation import identify_conversation
from execution.lib import conversation_store, message_store, tenant_store
from execution.lib.providers import ProviderRegistry
from execution.set_mode_human import set_mode_human
from tests.conftest import SNAPSHOT

TRIALS = 500


@pytest.fixture
def channel(resources):
    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="race", name="Race Homes")
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email="race@race.example", name="Race",
                                   password_hash=None)
        row = tenant_store.upsert_channel(c, organization_id=org["id"], agent_id=agent["id"], provider="sandbox",
                                   instance_id="1100000099")
        return tenant_store.get_channel(c, channel_id=row["id"])


def _new_conversation(db, channel, n):
    with db.transaction() as c:
        convo = identify_conversation(c, channel=channel, chat_id=f"1555{n:07d}@c.us")
        message_store.insert_message(c, organization_id=channel["organization_id"], conversation_id=convo["id"],
                                     direction="inbound", author="customer", message_type="text",
                                     body="I want a flat in Maadi", provider_message_id=f"RACE{n}")
        conversation_store.schedule_reply(c, conversation_id=convo["id"], window_s=0, cap_s=0)
        return convo["id"]


def _answer(resources, providers, snapshot, cid, start, results):
    time.sleep(start)
    results["answer"] = answering.answer_conversation(
        resources.db, resources.redis, providers, conversation_id=cid, snapshot=snapshot).answer


def _take_over(resources, cid, delay):
    time.sleep(delay)                   # ... when the agent taps "take over"
    with resources.db.connection() as c:
        set_mode_human(c, snapshot=SNAPSHOT, conversation_id=cid, actor="inbox", reason="race")


def test_no_ai_message_is_sent_after_a_takeover_commits(resources, channel, monkeypatch):
    rng = random.Random(20261123)
    real_generate = answering.generate_ai_response

    def slowed(*args, **kwargs):
        time.sleep(rng.uniform(0, 0.008))     # the reply is being written ...
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(answering, "generate_ai_response", slowed)
    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    snapshot = SNAPSHOT
    # How long an unraced answer takes on this machine (it varies with load and with what the
    # responder does); the takeover then lands anywhere from before the answer starts to after it ends.
    took = []
    for n in range(5):
        cid = _new_conversation(resources.db, channel, TRIALS + n)
        began = time.perf_counter()
        _answer(resources, providers, snapshot, cid, 0, {})
        took.append(time.perf_counter() - began)
    span = max(0.015, 2 * sorted(took)[2])
    outcomes = {}
    conversations = []
    for n in range(TRIALS):
        cid = _new_conversation(resources.db, channel, n)
        conversations.append(cid)
        delay, start = rng.uniform(0, span), rng.uniform(0, 0.004)
        results = {}

        threads = [threading.Thread(target=_answer, args=(resources, providers, snapshot, cid, start, results)),
                   threading.Thread(target=_take_over, args=(resources, cid, delay))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        outcomes[results.get("answer")] = outcomes.get(results.get("answer"), 0) + 1

    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute(
            """
            SELECT c.id, c.mode,
                   (SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id
                       AND m.message_type = 'mode_change') AS takeover_id,
                   (SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id
                       AND m.author = 'ai' AND m.outbox_id IS NOT NULL) AS sent_id,
                   (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id
                       AND m.author = 'ai' AND m.delivery_status = 'suppressed') AS suppressed,
                   (SELECT count(*) FROM outbox o WHERE o.conversation_id = c.id) AS outbox_rows
              FROM conversations c WHERE c.id = ANY(%s)
            """,
            (conversations,),
        )
        rows = cur.fetchall()
    assert len(rows) == TRIALS and all(r["mode"] == "HUMAN" and r["takeover_id"] for r in rows)
    late = [r["id"] for r in rows if r["sent_id"] is not None and r["sent_id"] > r["takeover_id"]]
    sent_before = sum(1 for r in rows if r["sent_id"] is not None)
    suppressed = sum(r["suppressed"] for r in rows)
    print(f"\nunraced answer median {sorted(took)[2] * 1000:.1f} ms; "
          f"{TRIALS} trials: {sent_before} replies sent before the takeover, {suppressed} drafts suppressed, "
          f"{len(late)} AI outbox rows after the takeover; answers {outcomes}")
    assert late == []
    assert all(r["outbox_rows"] <= 1 for r in rows)
    # Each trial ends one of the three ways; the random timing must have produced the race both ways.
    assert sent_before > 0 and suppressed > 0
    assert sent_before + suppressed + outcomes.get(answering.Answer.HUMAN, 0) == TRIALS
