import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution import process_inbound
from execution import worker as worker_mod
from execution.worker import run_once
from main import create_app
from tests.conftest import SNAPSHOT, WEBHOOK_TOKEN, load_fixture, post_green_api
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]


def _post(db, fixture="greenapi_incoming_text.json", **changes):
    payload = load_fixture(fixture)
    payload.update(changes)
    return post_green_api(db, payload)


def _one(db, sql, params=()):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def test_failing_event_backs_off_then_fails_with_its_error(resources, green_channel, monkeypatch):
    def boom(conn, *, event, snapshot, final_attempt=False):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(worker_mod, "process_event", boom)
    receipt = _post(resources.db)
    first = run_once(resources.db, snapshot=SNAPSHOT, max_attempts=2)
    assert first.retried == 1
    row = _one(resources.db, "SELECT status, attempts, last_error, available_at > now() AS later FROM webhook_events")
    assert row == {"status": "pending", "attempts": 1, "last_error": "RuntimeError: parser exploded", "later": True}
    assert run_once(resources.db, snapshot=SNAPSHOT, max_attempts=2).claimed == 0  # not due yet
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("UPDATE webhook_events SET available_at = now()")
    assert run_once(resources.db, snapshot=SNAPSHOT, max_attempts=2).failed == 1
    row = _one(resources.db, "SELECT status, attempts, last_error FROM webhook_events WHERE id = %s",
               (receipt.event_id,))
    assert row == {"status": "failed", "attempts": 2, "last_error": "RuntimeError: parser exploded"}


def test_backoff_is_bounded():
    assert [worker_mod.backoff_s(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert worker_mod.backoff_s(50) == worker_mod.MAX_BACKOFF_S


@pytest.mark.race
def test_worker_killed_between_claim_and_done_is_processed_exactly_once(resources, green_channel, test_dsn):
    receipt = _post(resources.db)
    blocker = resources.db._pool.getconn()  # hold a lock the processing needs, so the kill lands mid-way
    blocker.autocommit = True
    with blocker.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
    env = {**os.environ, "DATABASE_URL": test_dsn, "APP_ENV": "test",
           "APP_SECRET_KEY": resources.settings.secret_key, "RUN_WORKER": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "execution.worker", "--once", "--lease-seconds", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _one(resources.db, "SELECT status FROM webhook_events")["status"] == "processing")
        wait_for(lambda: _one(resources.db, "SELECT count(*) AS n FROM pg_stat_activity "
                                             "WHERE wait_event_type = 'Lock' AND datname = current_database()")["n"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        with blocker.cursor() as cur:
            cur.execute("ROLLBACK")
        resources.db._pool.putconn(blocker)
    assert run_once(resources.db, snapshot=SNAPSHOT).claimed == 0  # the dead worker's lease still holds
    wait_for(lambda: run_once(resources.db, snapshot=SNAPSHOT).done == 1, timeout=15, step=0.2)
    assert _one(resources.db, "SELECT count(*) AS n FROM messages WHERE author = 'customer'")["n"] == 1
    row = _one(resources.db, "SELECT status, attempts FROM webhook_events WHERE id = %s", (receipt.event_id,))
    assert row == {"status": "done", "attempts": 2}


def test_in_process_worker_picks_up_events_on_notify(resources, green_channel):
    with TestClient(create_app(resources, run_worker=True)) as client:
        r = client.post("/webhooks/green-api", json=load_fixture("greenapi_incoming_text.json"),
                        headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
        assert r.status_code == 200
        wait_for(lambda: _one(resources.db, "SELECT status FROM webhook_events")["status"] == "done", timeout=5)
    assert _one(resources.db, "SELECT body FROM messages")["body"] == "Hi, is the 2-bedroom flat still available?"


def test_process_inbound_cli_replays_one_event_and_pending(resources, green_channel, capsys):
    receipt = _post(resources.db)
    _post(resources.db, idMessage="SECOND")
    assert process_inbound.main(["--event", str(receipt.event_id)], resources=resources) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "stored" and out["needs_reply"] is True
    assert process_inbound.main(["--event", str(receipt.event_id)], resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "duplicate"  # replay stores nothing twice
    assert process_inbound.main(["--pending"], resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 1
    assert process_inbound.main(["--event", "424242"], resources=resources) == 4


def _customer_text(db, *, chat: str, n: int, text: str):
    payload = load_fixture("greenapi_incoming_text.json")
    payload["idMessage"] = f"PARALLEL{chat}{n:04d}"
    payload["senderData"] = {**payload["senderData"], "chatId": f"{chat}@c.us", "sender": f"{chat}@c.us"}
    payload["messageData"] = {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}
    return post_green_api(db, payload)


def test_a_batch_is_applied_by_chat_in_parallel_and_each_chat_keeps_its_order(resources, green_channel, monkeypatch):
    """Several chats' events are applied at once on the pool; one chat's events never overtake each other."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    chats = [f"1555000{n:04d}" for n in range(6)]
    for n in range(4):
        for chat in chats:
            _customer_text(resources.db, chat=chat, n=n, text=f"message {n} from {chat}")
    real = worker_mod.process_event
    running, peak, order, lock = 0, 0, [], threading.Lock()

    def slow(conn, *, event, snapshot, final_attempt=False):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)                       # long enough for the other chats' threads to overlap
        try:
            return real(conn, event=event, snapshot=snapshot, final_attempt=final_attempt)
        finally:
            with lock:
                running -= 1
                order.append(event["id"])

    monkeypatch.setattr(worker_mod, "process_event", slow)
    with ThreadPoolExecutor(max_workers=4) as pool:
        started = time.monotonic()
        report = run_once(resources.db, snapshot=SNAPSHOT, batch=24, pool=pool)
        took = time.monotonic() - started
    assert (report.claimed, report.done) == (24, 24)
    assert peak >= 2, "the chats were applied one after another"
    assert took < 24 * 0.05, f"24 events of 50 ms took {took:.2f}s: not applied in parallel"
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("""SELECT c.chat_id, m.body FROM messages m JOIN conversations c ON c.id = m.conversation_id
                        WHERE m.author = 'customer' ORDER BY m.id""")
        rows = cur.fetchall()
    for chat in chats:
        bodies = [r["body"] for r in rows if r["chat_id"] == f"{chat}@c.us"]
        assert bodies == [f"message {n} from {chat}" for n in range(4)], chat


def test_a_failing_chat_does_not_stop_the_other_chats_of_its_batch(resources, green_channel, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    _customer_text(resources.db, chat="15550009001", n=0, text="fine")
    _customer_text(resources.db, chat="15550009002", n=0, text="explode")
    real = worker_mod.process_event

    def picky(conn, *, event, snapshot, final_attempt=False):
        if "explode" in json.dumps(event["payload"]):
            raise RuntimeError("parser exploded")
        return real(conn, event=event, snapshot=snapshot, final_attempt=final_attempt)

    monkeypatch.setattr(worker_mod, "process_event", picky)
    with ThreadPoolExecutor(max_workers=4) as pool:
        report = run_once(resources.db, snapshot=SNAPSHOT, pool=pool)
    assert (report.claimed, report.done, report.retried) == (2, 1, 1)
