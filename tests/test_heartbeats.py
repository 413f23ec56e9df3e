"""/health tells "nothing to do" from "nobody doing it": every loop beats; waiting work with no live loop is down."""

from fastapi.testclient import TestClient

from execution.lib import ops_store
from execution.worker import Worker
from main import create_app
from tests.conftest import StaticDirectives, load_fixture, post_green_api
from tests.waiting import wait_for


def _health(resources):
    with TestClient(create_app(resources, run_worker=False, directives=StaticDirectives())) as client:
        r = client.get("/health")
    return r.status_code, r.json()


def test_work_waiting_with_no_worker_alive_is_down(resources, green_channel):
    assert _health(resources)[0] == 200                             # nothing waiting: fine without a worker
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    assert _health(resources)[0] == 200                             # just arrived: a worker may be on its way
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("UPDATE webhook_events SET received_at = now() - interval '2 minutes'")
    status, body = _health(resources)
    assert status == 503 and body["status"] == "down" and "no event worker" in body["reason"]
    assert body["backlog"]["events_waiting"] == 1


def test_a_beating_worker_keeps_health_up_and_leaves_no_beat_when_stopped(resources, green_channel):
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("UPDATE webhook_events SET received_at = now() - interval '2 minutes', "
                    "available_at = now() + interval '1 hour'")   # waiting, and not for this worker yet
    worker = Worker(resources.db, directives=StaticDirectives(), idle_s=0.05).start()
    try:
        wait_for(lambda: _beats(resources).get("webhook-worker", {}).get("alive") == 1)
        status, body = _health(resources)
        assert status == 200 and body["backlog"]["loops"]["webhook-worker"]["last_beat_s"] < 10
    finally:
        worker.stop()
    assert "webhook-worker" not in _beats(resources)


def _beats(resources):
    with resources.db.connection() as conn:
        return ops_store.heartbeats(conn, fresh_s=30)
