import json
import threading

import pytest
from fastapi.testclient import TestClient

from execution.lib.db import Database
from execution.lib.intake import IntakeWriter
from execution.webhook_handler import ChannelDirectory, store_events
from execution.worker import drain
from main import create_app
from tests.conftest import FIXTURES, INSTANCE_ID, SNAPSHOT, WEBHOOK_TOKEN, load_fixture

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@pytest.fixture
def client(resources, green_channel):
    with TestClient(create_app(resources, run_worker=False)) as c:
        yield c


def _count(db, table, where="TRUE", params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM {table} WHERE {where}", params)
        return cur.fetchone()["n"]


def test_every_fixture_is_stored_and_processed(client, resources):
    names = sorted(p.name for p in FIXTURES.glob("greenapi_*.json"))
    assert len(names) == 16
    for name in names:
        r = client.post("/webhooks/green-api", content=(FIXTURES / name).read_bytes(), headers=AUTH)
        assert r.status_code == 200, (name, r.text)
    # receive_notification wraps the same message as incoming_text: one event for both.
    assert _count(resources.db, "webhook_events") == len(names) - 1
    drain(resources.db, snapshot=SNAPSHOT, max_attempts=1)
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT status, count(*) AS n FROM webhook_events GROUP BY status")
        by_status = {r["status"]: r["n"] for r in cur.fetchall()}
        cur.execute("SELECT author, count(*) AS n FROM messages WHERE direction <> 'internal' GROUP BY author")
        by_author = {r["author"]: r["n"] for r in cur.fetchall()}
        cur.execute("SELECT provider_state FROM channels")
        state = cur.fetchone()["provider_state"]
    assert by_status.get("failed", 0) == 0 and by_status.get("pending", 0) == 0
    assert by_author["customer"] == 9
    assert by_author["agent"] == 1           # typed on the phone
    assert "system" not in by_author         # the echo fixture shares its id with extended_text: no new row
    assert state == "notAuthorized"


def test_phone_reply_takes_the_conversation_over(client, resources):
    client.post("/webhooks/green-api", json=load_fixture("greenapi_incoming_text.json"), headers=AUTH)
    client.post("/webhooks/green-api", json=load_fixture("greenapi_outgoing_from_phone.json"), headers=AUTH)
    report = drain(resources.db, snapshot=SNAPSHOT)
    assert report.done == 2
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT mode, mode_version, mode_reason, unread_count FROM conversations")
        conv = cur.fetchone()
        cur.execute("SELECT media FROM messages WHERE message_type = 'mode_change'")
        timeline = cur.fetchone()["media"]
    assert conv == {"mode": "HUMAN", "mode_version": 1, "mode_reason": "phone_reply", "unread_count": 1}
    assert timeline["actor"] == "phone" and timeline["reason"] == "phone_reply"


def test_twenty_deliveries_make_one_event_and_one_message(client, resources):
    body = (FIXTURES / "greenapi_incoming_text.json").read_bytes()
    codes = [client.post("/webhooks/green-api", content=body, headers=AUTH).status_code for _ in range(10)]
    barrier = threading.Barrier(10)

    def post():
        barrier.wait()
        codes.append(client.post("/webhooks/green-api", content=body, headers=AUTH).status_code)

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 20
    drain(resources.db, snapshot=SNAPSHOT)
    drain(resources.db, snapshot=SNAPSHOT)
    assert _count(resources.db, "webhook_events") == 1
    assert _count(resources.db, "messages", "author = 'customer'") == 1


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer forged"}, {}, {"Authorization": WEBHOOK_TOKEN}, {"Authorization": "Basic " + WEBHOOK_TOKEN}],
)
def test_forged_or_missing_token_writes_nothing(client, resources, headers):
    r = client.post("/webhooks/green-api", json=load_fixture("greenapi_incoming_text.json"), headers=headers)
    assert r.status_code == 401
    assert _count(resources.db, "webhook_events") == 0


def test_unknown_instance_is_refused(client, resources):
    payload = load_fixture("greenapi_incoming_text.json")
    payload["instanceData"]["idInstance"] = 9999999999
    assert client.post("/webhooks/green-api", json=payload, headers=AUTH).status_code == 401
    assert _count(resources.db, "webhook_events") == 0


@pytest.mark.parametrize(
    "body, status, reason",
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"typeWebhook": "incomingMessageReceived"}', 400, "idInstance"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b'{"pad": "' + b"x" * 1_000_100 + b'"}', 413, "limit"),
    ],
)
def test_bad_bodies_get_a_reason_not_a_stack_trace(client, resources, body, status, reason):
    r = client.post("/webhooks/green-api", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == status
    assert reason in r.json()["error"]
    assert _count(resources.db, "webhook_events") == 0


def test_unknown_kinds_are_stored_and_ignored_with_reason(client, resources):
    payload = load_fixture("greenapi_incoming_text.json")
    payload["messageData"] = {"typeMessage": "brandNewMessage"}
    assert client.post("/webhooks/green-api", json=payload, headers=AUTH).status_code == 200
    drain(resources.db, snapshot=SNAPSHOT)
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT status, last_error FROM webhook_events")
        row = cur.fetchone()
    assert row["status"] == "ignored" and "brandNewMessage" in row["last_error"]


def test_database_down_is_503_never_200(resources, green_channel, make_database):
    dead = Database(make_database(), minconn=1, maxconn=1)  # never opened: every borrow fails
    app = create_app(resources, run_worker=False)
    with TestClient(app) as c:
        body = load_fixture("greenapi_incoming_text.json")
        assert c.post("/webhooks/green-api", json=body, headers=AUTH).status_code == 200  # channel now cached
        app.state.receiver.intake.stop()
        app.state.receiver.intake = IntakeWriter(dead, store_events).start()
        body["idMessage"] = "WHILE-DOWN"
        r = c.post("/webhooks/green-api", json=body, headers=AUTH)  # cached channel, storage down
        assert r.status_code == 503 and "retry" in r.json()["error"]
        app.state.receiver.channels = ChannelDirectory(dead)
        r = c.post("/webhooks/green-api", json=body, headers=AUTH)  # channel lookup itself fails
        assert r.status_code == 503
    assert _count(resources.db, "webhook_events", "event_key LIKE %s", ("%WHILE-DOWN",)) == 0


def test_group_messages_are_stored_but_not_for_answering(client, resources):
    from execution.worker import run_once

    payload = load_fixture("greenapi_incoming_text.json")
    payload["senderData"]["chatId"] = "120363043968066561@g.us"
    client.post("/webhooks/green-api", json=payload, headers=AUTH)
    report = run_once(resources.db, snapshot=SNAPSHOT)
    [result] = report.results
    assert result.outcome.value == "stored" and result.needs_reply is False and "group" in result.reason
    single = load_fixture("greenapi_incoming_text.json")
    single["idMessage"] = "OTHER1"
    client.post("/webhooks/green-api", json=single, headers=AUTH)
    [result] = run_once(resources.db, snapshot=SNAPSHOT).results
    assert result.needs_reply is True


def test_the_cli_stores_a_file(resources, green_channel, tmp_path, capsys):
    from execution import webhook_handler

    f = tmp_path / "p.json"
    f.write_text(json.dumps(load_fixture("greenapi_incoming_text.json")))
    assert webhook_handler.main(["--file", str(f), "--token", WEBHOOK_TOKEN], resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "stored"
    assert webhook_handler.main(["--file", str(f), "--token", "nope"], resources=resources) == 77
    assert INSTANCE_ID in f.read_text()


def test_an_echo_is_never_taken_for_the_agent(client, resources):
    from execution.worker import run_once

    echo = load_fixture("greenapi_outgoing_api.json")
    echo["idMessage"] = "ECHO-NOT-OURS"
    client.post("/webhooks/green-api", json=echo, headers=AUTH)
    first = run_once(resources.db, snapshot=SNAPSHOT, max_attempts=2)
    assert first.retried == 1  # may be our own send whose id is not recorded yet: wait
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("UPDATE webhook_events SET available_at = now()")
    second = run_once(resources.db, snapshot=SNAPSHOT, max_attempts=2)
    assert second.done == 1
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT author FROM messages WHERE provider_message_id = 'ECHO-NOT-OURS'")
        assert cur.fetchone()["author"] == "system"
        cur.execute("SELECT mode FROM conversations")
        assert cur.fetchone()["mode"] == "AI"
