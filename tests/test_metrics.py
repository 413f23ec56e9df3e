"""/metrics: the figures PostgreSQL holds after a real flow, the waiting work, who may scrape, a database outage."""

import dataclasses

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from execution.lib import ops_store
from execution.lib.db import Database, connect
from execution.lib.metrics import label
from execution.lib.outbound import OutboundContent
from execution.lib.providers import ProviderRegistry
from execution.lib.resources import Resources
from execution.migrate import migrate
from execution.send_whatsapp_message import send_whatsapp_message
from execution.worker import run_once
from main import create_app
from tests.conftest import SNAPSHOT, WEBHOOK_TOKEN, StaticDirectives, load_fixture
from tests.fakes import anthropic_server as A
from tests.waiting import wait_for

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
HEALTH_TOKEN = "health-token-0123456789abcdef"
ANTHROPIC_KEY = "test-anthropic-key-metrics"
ASKS = "201000000001@c.us"        # asks about a flat: the model answers
WANTS_A_PERSON = "201000000002@c.us"


def _with(resources: Resources, *, db=None, **settings) -> Resources:
    return Resources(dataclasses.replace(resources.settings, **settings), db or resources.db, resources.redis,
                     "test", "test")


def _customer(text: str, n: int, chat: str) -> dict:
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"METRICS{n:08d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


def _scrape(client: TestClient, headers: dict | None = None) -> tuple[dict, str]:
    """Every sample as {(name, frozenset(labels)): value}, and the text as served."""
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}
    return samples, r.text


def _value(samples: dict, name: str, **labels) -> float:
    return samples[(name, frozenset(labels.items()))]


def _one(db, sql: str, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def _settled(db) -> bool:
    row = _one(db, """SELECT (SELECT count(*) FROM webhook_events WHERE status NOT IN ('done', 'ignored'))
                           + (SELECT count(*) FROM conversations WHERE reply_due_at IS NOT NULL
                                                                    OR reply_claim_until IS NOT NULL)
                           + (SELECT count(*) FROM outbox WHERE status IN ('pending', 'retrying'))
                           + (SELECT count(*) FROM escalations WHERE alert_status = 'pending') AS n""")
    return row["n"] == 0


@pytest.fixture
def fake_claude():
    server = A.FakeAnthropic(api_key=ANTHROPIC_KEY, default_text="Happy to help: which area do you prefer?").start()
    yield server
    server.stop()


# ------------------------------------------------------------------ the figures after a real flow


def test_the_figures_are_what_the_database_holds_after_a_real_flow(resources, green_channel, fake_green_api,
                                                                   fake_claude):
    res = _with(resources, anthropic_api_key=ANTHROPIC_KEY, anthropic_base_url=fake_claude.url,
                anthropic_timeout_s=5, anthropic_max_retries=0)
    with TestClient(create_app(res, run_worker=True, directives=StaticDirectives(SNAPSHOT))) as client:
        asks = _customer("Hi, is the 2-bedroom flat still available?", 1, ASKS)
        assert client.post("/webhooks/green-api", json=asks, headers=AUTH).json()["outcome"] == "stored"
        wait_for(lambda: [c for c in fake_green_api.calls("sendMessage") if c["body"]["chatId"] == ASKS])
        client.post("/webhooks/green-api", json=_customer("I want to speak to a human", 2, WANTS_A_PERSON),
                    headers=AUTH)
        unknown = _customer("", 3, ASKS)
        unknown["messageData"] = {"typeMessage": "brandNewMessage"}
        client.post("/webhooks/green-api", json=unknown, headers=AUTH)
        assert client.post("/webhooks/green-api", json=asks, headers=AUTH).json()["outcome"] == "duplicate"
        wait_for(lambda: _settled(res.db))
        # A draft written while the agent held the conversation: the fence keeps it back.
        handed = _one(res.db, "SELECT id, mode FROM conversations WHERE chat_id = %s", (WANTS_A_PERSON,))
        assert handed["mode"] == "HUMAN"
        late = send_whatsapp_message(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                     snapshot=SNAPSHOT, conversation_id=handed["id"], idempotency_key="reply:late",
                                     author="ai", content=OutboundContent(text="A late draft"),
                                     expected_mode_version=0)
        assert late.outcome.value == "suppressed"
        samples, text = _scrape(client)

    db = res.db
    generation = _one(db, "SELECT generation FROM messages WHERE author = 'ai' AND generation IS NOT NULL")
    generation = generation["generation"]
    assert generation["backend"] == "claude" and generation["input_tokens"] > 0 and generation["output_tokens"] > 0
    assert _value(samples, "wa_assistant_up") == 1
    # Three events stored (the duplicate was not): two messages applied, the unknown kind ignored.
    assert _value(samples, "wa_assistant_webhook_events_received_total", provider="green_api") == 3
    assert _value(samples, "wa_assistant_webhook_events_processed_total", provider="green_api", outcome="done") == 2
    assert _value(samples, "wa_assistant_webhook_events_processed_total", provider="green_api",
                  outcome="ignored") == 1
    assert _value(samples, "wa_assistant_webhook_events_processed_total", provider="green_api", outcome="failed") == 0
    assert _value(samples, "wa_assistant_webhook_events_waiting", provider="green_api") == 0
    assert _value(samples, "wa_assistant_webhook_events_oldest_waiting_seconds") == 0
    # The model's reply, the handoff and the agent's alert went out; the late draft never had an outbox row.
    assert len(fake_green_api.calls("sendMessage")) == 3
    assert _value(samples, "wa_assistant_sends_total", provider="green_api", outcome="sent") == 3
    for outcome in ("failed", "unknown", "suppressed"):
        assert _value(samples, "wa_assistant_sends_total", provider="green_api", outcome=outcome) == 0
    assert _value(samples, "wa_assistant_sends_queued", provider="green_api") == 0
    # One reply written by the model, with what it cost and how long it took.
    assert _value(samples, "wa_assistant_replies_total", backend="claude") == 1
    assert not [k for k in samples if k[0] == "wa_assistant_replies_total" and k != (
        "wa_assistant_replies_total", frozenset({("backend", "claude")}))]
    assert _value(samples, "wa_assistant_model_fallbacks_total", backend="claude") == 0
    assert _value(samples, "wa_assistant_model_reply_latency_seconds_count", backend="claude") == 1
    assert _value(samples, "wa_assistant_model_reply_latency_seconds_sum", backend="claude") == pytest.approx(
        generation["latency_ms"] / 1000)
    for kind in ("input", "output", "cache_read", "cache_write"):
        assert _value(samples, "wa_assistant_model_tokens_total", backend="claude", kind=kind) == \
            generation[f"{kind}_tokens"], kind
    assert _value(samples, "wa_assistant_fence_suppressions_total") == 1
    assert _value(samples, "wa_assistant_escalations_total", rule="asks_for_a_person", category="human_request") == 1
    assert [k for k in samples if k[0] == "wa_assistant_escalations_total"] == [
        ("wa_assistant_escalations_total", frozenset({("rule", "asks_for_a_person"), ("category", "human_request")}))]
    assert _value(samples, "wa_assistant_escalations_open") == 1
    flagged = _one(db, "SELECT count(*) AS n FROM conversations WHERE needs_attention")["n"]
    assert _value(samples, "wa_assistant_conversations_flagged") == flagged >= 1
    assert _value(samples, "wa_assistant_replies_due") == 0
    # The app's own three loops were beating when it was scraped.
    for loop in ("webhook-worker", "responder", "outbox-dispatcher"):
        assert _value(samples, "wa_assistant_loops_alive", loop=loop) == 1
        assert 0 <= _value(samples, "wa_assistant_loop_last_beat_seconds", loop=loop) < 30
    # Nothing a customer wrote, no number, no token.
    for secret in ("201000000001", "201000000002", "15550000000", "speak to a human", "2-bedroom", WEBHOOK_TOKEN,
                   fake_green_api.token, ANTHROPIC_KEY, "A late draft"):
        assert secret not in text, secret
    # Every family is ours and says what it is.
    families = list(text_string_to_metric_families(text))
    assert all(f.name.startswith("wa_assistant_") and f.documentation for f in families)


def test_waiting_work_and_its_age(resources, green_channel):
    with TestClient(create_app(resources, run_worker=False, directives=StaticDirectives(SNAPSHOT))) as client:
        client.post("/webhooks/green-api", json=_customer("Hello", 1, ASKS), headers=AUTH)
        with resources.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE webhook_events SET received_at = now() - interval '120 seconds'")
        samples, _ = _scrape(client)
        assert _value(samples, "wa_assistant_webhook_events_waiting", provider="green_api") == 1
        assert _value(samples, "wa_assistant_webhook_events_received_total", provider="green_api") == 1
        assert _value(samples, "wa_assistant_webhook_events_processed_total", provider="green_api", outcome="done") == 0
        assert 120 <= _value(samples, "wa_assistant_webhook_events_oldest_waiting_seconds") < 150
        assert _value(samples, "wa_assistant_replies_due") == 0

        run_once(resources.db, snapshot=SNAPSHOT)      # applied: with no burst window the reply is due now
        with resources.db.transaction() as conn, conn.cursor() as cur:
            cur.execute("UPDATE conversations SET reply_due_at = now() - interval '60 seconds'")
            cur.execute("INSERT INTO jobs (organization_id, kind, key, run_at) VALUES "
                        "(%s, 'followup', 'metrics:due', now() - interval '45 seconds'), "
                        "(%s, 'followup', 'metrics:later', now() + interval '1 hour')",
                        (green_channel["organization_id"], green_channel["organization_id"]))
            cur.execute("INSERT INTO jobs (organization_id, kind, key, run_at, status) VALUES "
                        "(%s, 'followup', 'metrics:failed', now(), 'failed')", (green_channel["organization_id"],))
            ops_store.beat(conn, name="elsewhere:1:responder", loop="responder")
            cur.execute("UPDATE loop_heartbeats SET beat_at = now() - interval '100 seconds'")
        samples, _ = _scrape(client)
    assert _value(samples, "wa_assistant_webhook_events_waiting", provider="green_api") == 0
    assert _value(samples, "wa_assistant_webhook_events_processed_total", provider="green_api", outcome="done") == 1
    assert _value(samples, "wa_assistant_webhook_events_oldest_waiting_seconds") == 0
    assert _value(samples, "wa_assistant_replies_due") == 1
    assert 60 <= _value(samples, "wa_assistant_replies_oldest_due_seconds") < 90
    assert (_value(samples, "wa_assistant_jobs_due"), _value(samples, "wa_assistant_jobs_failed")) == (1, 1)
    assert 45 <= _value(samples, "wa_assistant_jobs_oldest_due_seconds") < 75
    # A responder that stopped beating 100 s ago: known, not alive.
    assert _value(samples, "wa_assistant_loops_alive", loop="responder") == 0
    assert 100 <= _value(samples, "wa_assistant_loop_last_beat_seconds", loop="responder") < 130
    assert not [k for k in samples if k[0] == "wa_assistant_loops_alive" and ("loop", "responder") not in k[1]]


def test_labels_carry_only_names_the_code_sets():
    assert label("asks_for_a_person") == "asks_for_a_person" and label("outbox-dispatcher") == "outbox-dispatcher"
    for value in ("201000000009", "201000000009@c.us", "+201000000009", "I want a human", "", None, "x" * 65):
        assert label(value) == "other", value


# ------------------------------------------------------------------ who may scrape


@pytest.mark.parametrize("app_env, token, headers, status, reason", [
    ("production", HEALTH_TOKEN, {}, 401, "/metrics needs Authorization: Bearer <HEALTH_TOKEN>"),
    ("production", HEALTH_TOKEN, {"Authorization": "Bearer wrong-token-0123456789abc"}, 401, "needs Authorization"),
    ("production", HEALTH_TOKEN, {"Authorization": HEALTH_TOKEN}, 401, "needs Authorization"),   # not a bearer token
    ("production", None, {"Authorization": f"Bearer {HEALTH_TOKEN}"}, 404,
     "/metrics is off in production until HEALTH_TOKEN is set"),
    ("production", HEALTH_TOKEN, {"Authorization": f"Bearer {HEALTH_TOKEN}"}, 200, None),
    ("test", HEALTH_TOKEN, {}, 200, None),                                   # open outside production
    ("test", None, {}, 200, None),
])
def test_who_may_scrape(resources, app_env, token, headers, status, reason):
    res = _with(resources, app_env=app_env, health_token=token)
    with TestClient(create_app(res, run_worker=False, directives=StaticDirectives(SNAPSHOT))) as client:
        r = client.get("/metrics", headers=headers)
    assert r.status_code == status
    if reason:
        assert r.json() == {"ok": False, "error": r.json()["error"]} and reason in r.json()["error"]
        assert "wa_assistant" not in r.text
    else:
        assert "wa_assistant_up 1.0" in r.text


# ------------------------------------------------------------------ a database outage


def test_a_database_outage_still_answers_with_up_0(resources, make_database):
    dsn = make_database()
    c = connect(dsn)
    try:
        migrate(c)
    finally:
        c.close()
    db = Database(dsn, minconn=1, maxconn=2, wait_s=0.5).open()
    try:
        with TestClient(create_app(_with(resources, db=db), run_worker=False,
                                   directives=StaticDirectives(SNAPSHOT))) as client:
            before, _ = _scrape(client)
            db.close()
            after, text = _scrape(client)
    finally:
        db.close()
    assert _value(before, "wa_assistant_up") == 1 and _value(before, "wa_assistant_replies_due") == 0
    assert after == {("wa_assistant_up", frozenset()): 0.0}
    assert "Traceback" not in text and "Error" not in text
