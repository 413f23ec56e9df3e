"""Random interleavings of duplicates, takeovers, outages, echoes and out-of-order statuses keep the promises.

Invariants, for every generated history of one chat:
- the assistant sends at most one reply per distinct customer message;
- nothing is sent to the chat after the agent's phone reply was acknowledged;
- a delivery status only moves forward (failed is final);
- every customer message ends answered, or the conversation is the agent's.
"""

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from execution.answer_due import answer_due
from execution.lib.providers import ProviderRegistry
from execution.lib.providers.green_api import GreenApiProvider
from execution.reconcile_outbox import reconcile_outbox
from execution.worker import drain
from tests.conftest import SNAPSHOT, load_fixture, post_green_api

RANK = {"sent": 1, "delivered": 2, "read": 3}
chat_numbers = itertools.count(1)

actions = st.lists(st.one_of(
    st.tuples(st.just("customer"), st.integers(0, 3)),
    st.tuples(st.just("phone")),
    st.tuples(st.just("work")),
    st.tuples(st.just("answer")),
    st.tuples(st.just("outage"), st.integers(1, 6)),
    st.tuples(st.just("reconcile")),
    st.tuples(st.just("status"), st.integers(0, 2), st.sampled_from(["sent", "delivered", "read", "failed"])),
    st.tuples(st.just("echo"), st.integers(0, 2)),
), min_size=3, max_size=14)


@pytest.fixture
def world(resources, green_channel, fake_green_api):
    provider = GreenApiProvider(api_url=fake_green_api.url, id_instance=fake_green_api.instance_id,
                                api_token=fake_green_api.token, backoff_s=0.001, read_timeout_s=2)
    return resources, ProviderRegistry(secret_key="unused", overrides={green_channel["id"]: provider}), fake_green_api


def _sql(db, sql, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=actions)
@example(history=[("customer", 0), ("work",), ("phone",), ("answer",)])        # a takeover in the backlog
@example(history=[("customer", 0), ("work",), ("outage", 3), ("answer",), ("phone",), ("reconcile",)])
def test_every_interleaving_keeps_the_promises(world, history):
    resources, registry, fake = world
    db = resources.db
    n = next(chat_numbers)
    chat = f"15559{n:06d}@c.us"
    posted, statuses, taken_over_at = set(), {}, None

    def ours():
        return [c for c in fake.calls("sendMessage") if c["body"]["chatId"] == chat]

    def sent_ids():
        return [c["id_message"] for c in ours() if c.get("id_message")]

    def due_now():
        _sql(db, "UPDATE conversations SET reply_due_at = now() WHERE reply_due_at IS NOT NULL")
        _sql(db, "UPDATE outbox SET next_attempt_at = now() WHERE status = 'retrying'")

    for step, action in enumerate(history):
        kind = action[0]
        if kind == "customer":
            body = load_fixture("greenapi_incoming_text.json")
            body["idMessage"] = f"H{n}M{action[1]}"          # a small id space: duplicates happen
            body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
            body["messageData"]["textMessageData"]["textMessage"] = f"flat in maadi please ({action[1]})"
            post_green_api(db, body)
            posted.add(action[1])
        elif kind == "phone":
            body = load_fixture("greenapi_outgoing_from_phone.json")
            body["idMessage"] = f"H{n}PHONE{step}"
            body["senderData"]["chatId"] = chat
            post_green_api(db, body)
            if taken_over_at is None:
                taken_over_at = len(ours())                    # acknowledged: nothing more may go to the chat
        elif kind == "work":
            drain(db, snapshot=SNAPSHOT, max_attempts=3)
        elif kind == "answer":
            answer_due(db, resources.redis, registry, snapshot=SNAPSHOT, limit=5)
        elif kind == "outage":
            fake.plan("sendMessage", *[503] * action[1])
        elif kind == "reconcile":
            due_now()
            reconcile_outbox(db, resources.redis, registry, snapshot=SNAPSHOT)
        elif kind in ("status", "echo") and len(sent_ids()) > action[1]:
            pmid = sent_ids()[action[1]]
            if kind == "status":
                body = load_fixture("greenapi_status_delivered.json")
                body.update({"idMessage": pmid, "chatId": chat, "status": action[2], "timestamp": 1_700_000_000 + step})
                post_green_api(db, body)
                statuses.setdefault(pmid, []).append(action[2])
            else:
                body = load_fixture("greenapi_outgoing_api.json")
                body["idMessage"] = pmid
                body["senderData"]["chatId"] = chat
                post_green_api(db, body)

    fake.plan("sendMessage")                                    # the provider is up at the end
    with fake._lock:
        fake._plans["sendMessage"].clear()
    for _ in range(6):                                          # let everything settle
        drain(db, snapshot=SNAPSHOT, max_attempts=3)
        due_now()
        answer_due(db, resources.redis, registry, snapshot=SNAPSHOT, limit=20)
        due_now()
        reconcile_outbox(db, resources.redis, registry, snapshot=SNAPSHOT)

    sends = ours()
    accepted = [c for c in sends if c.get("id_message")]
    assert len(accepted) <= len(posted), (history, len(accepted))
    if taken_over_at is not None:
        assert len(sends) == taken_over_at, ("sent after the takeover was acknowledged", history)
    for pmid, seen in statuses.items():
        row = _sql(db, "SELECT delivery_status FROM messages WHERE provider_message_id = %s", (pmid,))
        final = row[0]["delivery_status"] if row else None
        if "failed" in seen:
            first_failed = seen.index("failed")
            best = max([RANK[s] for s in seen[:first_failed] if s in RANK] + [0])
            assert final == "failed" or (best and RANK.get(final, 0) >= best), (history, seen, final)
        else:
            assert RANK.get(final, 0) == max(RANK[s] for s in seen), (history, seen, final)
    convo = _sql(db, "SELECT id, mode FROM conversations WHERE chat_id = %s", (chat,))
    if posted and convo and convo[0]["mode"] == "AI":
        unanswered = _sql(db, """
            SELECT count(*) AS n FROM messages m WHERE m.conversation_id = %(c)s AND m.author = 'customer'
               AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.conversation_id = %(c)s AND r.id > m.id
                                 AND r.author IN ('ai', 'agent')
                                 AND coalesce(r.delivery_status, '') NOT IN ('suppressed', 'failed'))
        """, {"c": convo[0]["id"]})[0]["n"]
        assert unanswered == 0, history
