"""What the app shows, and to whom: health states and details, the API docs, the simulator; a Redis outage."""

import dataclasses
import socket
import time
from pathlib import Path

import pytest
import redis as redis_lib
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from execution.answer_due import answer_claimed
from execution.check_health import check_health, may_see_details
from execution.lib import conversation_store
from execution.lib.config import load_settings
from execution.lib.db import Database, connect
from execution.lib.errors import ConfigError
from execution.lib.providers import ProviderRegistry
from execution.lib.resources import Resources
from execution.migrate import migrate
from execution.seed_demo import seed_demo
from execution.worker import run_once
from main import create_app
from tests.conftest import SNAPSHOT, load_fixture, post_green_api

ROOT = Path(__file__).resolve().parents[1]
HEALTH_TOKEN = "health-token-0123456789abcdef"


def _dead_redis(*, retries: bool = True) -> redis_lib.Redis:
    """A client for a port nothing listens on; with its default retries each call takes seconds to fail."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = {} if retries else {"retry": Retry(NoBackoff(), 0)}
    return redis_lib.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5, **extra)


def _with(resources: Resources, *, redis=None, db=None, **settings) -> Resources:
    return Resources(dataclasses.replace(resources.settings, **settings), db or resources.db,
                     redis or resources.redis, "test", "test")


def _health(res: Resources, headers: dict | None = None):
    with TestClient(create_app(res, run_worker=False)) as client:
        return client.get("/health", headers=headers or {})


# ------------------------------------------------------------------ health: ok, degraded, down


def test_health_is_ok(resources):
    r = _health(resources)
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["ok"] is True
    assert r.json()["reason"] is None


def test_a_redis_outage_is_degraded_with_200_and_quickly(resources):
    with TestClient(create_app(_with(resources, redis=_dead_redis()), run_worker=False)) as client:
        started = time.perf_counter()
        r = client.get("/health")
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert elapsed < 4.0      # one 1 s probe, not the client's 6+ s of retries: a load balancer would time out
    body = r.json()
    assert body["status"] == "degraded" and body["ok"] is False and body["reason"].startswith("redis unavailable")
    assert body["database"]["ok"] is True and body["redis"]["ok"] is False
    assert "ConnectionError" in body["redis"]["error"]            # outside production, without a token: details


def test_a_database_outage_is_down_with_503(resources, make_database):
    dsn = make_database()
    c = connect(dsn)
    try:
        migrate(c)
    finally:
        c.close()
    db = Database(dsn, minconn=1, maxconn=2, wait_s=0.5).open()
    try:
        with TestClient(create_app(_with(resources, db=db), run_worker=False)) as client:
            assert client.get("/health").json()["status"] == "ok"
            db.close()
            r = client.get("/health")
    finally:
        db.close()
    assert r.status_code == 503
    assert r.json()["status"] == "down" and r.json()["reason"] == "database unavailable" and r.json()["ok"] is False


def test_pending_migrations_are_down_and_their_names_are_a_detail(resources, make_database):
    db = Database(make_database(), minconn=1, maxconn=2, wait_s=0.5).open()
    try:
        report = check_health(db, resources.redis, database_kind="t", redis_kind="t")
    finally:
        db.close()
    assert report.status == "down" and report.http_status == 503 and "migrations" in report.reason
    assert report.migrations.pending[0] == "001_initial_schema"
    hidden = report.without_details()
    assert hidden.migrations.pending == [] and hidden.migrations.changed == [] and hidden.details_hidden
    assert (hidden.status, hidden.reason, hidden.migrations.ok) == (report.status, report.reason, False)


# ------------------------------------------------------------------ health: who sees details


@pytest.mark.parametrize("app_env, token, headers, shown", [
    ("production", None, {}, False),
    ("production", None, {"Authorization": f"Bearer {HEALTH_TOKEN}"}, False),   # no token set: nobody
    ("production", HEALTH_TOKEN, {}, False),
    ("production", HEALTH_TOKEN, {"Authorization": "Bearer wrong-token-0123456789abc"}, False),
    ("production", HEALTH_TOKEN, {"Authorization": HEALTH_TOKEN}, False),            # not a bearer token
    ("production", HEALTH_TOKEN, {"Authorization": f"Bearer {HEALTH_TOKEN}"}, True),
    ("test", HEALTH_TOKEN, {}, False),                                               # a token set: always needed
    ("test", HEALTH_TOKEN, {"Authorization": f"bearer  {HEALTH_TOKEN} "}, True),
    ("test", None, {}, True),
])
def test_error_details_need_the_health_token(resources, app_env, token, headers, shown):
    r = _health(_with(resources, redis=_dead_redis(), app_env=app_env, health_token=token), headers)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "degraded" and body["redis"]["ok"] is False
    assert body["reason"].startswith("redis unavailable")          # the state and its reason, for anyone
    assert body["details_hidden"] is (not shown)
    if shown:
        assert "ConnectionError" in body["redis"]["error"]
    else:
        assert body["redis"]["error"] == "hidden" and "6379" not in r.text and "Error" not in r.text


def test_a_refused_directive_edit_is_a_detail(resources):
    class Refused:
        errors = ("core/message_sending_rules.md: burst_cap_s: must be a number, got str",)

        def current(self):
            return SNAPSHOT

    res = _with(resources, app_env="production")
    with TestClient(create_app(res, run_worker=False, directives=Refused())) as client:
        body = client.get("/health").json()
    assert body["directives"]["ok"] is False and body["directives"]["errors"] == []
    assert body["directives"]["versions"] and "burst_cap_s" not in str(body)


def test_may_see_details():
    assert may_see_details(None, health_token=None, production=False) is True
    assert may_see_details(None, health_token=None, production=True) is False
    assert may_see_details(f"Bearer {HEALTH_TOKEN}", health_token=HEALTH_TOKEN, production=True) is True
    assert may_see_details(f"Bearer {HEALTH_TOKEN}x", health_token=HEALTH_TOKEN, production=False) is False
    assert may_see_details("Bearer ", health_token=HEALTH_TOKEN, production=False) is False


# ------------------------------------------------------------------ the API docs


def test_the_api_docs_are_off_in_production(resources):
    with TestClient(create_app(_with(resources, app_env="production"), run_worker=False)) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            r = client.get(path)
            assert r.status_code == 404 and r.json()["error"] == "the API docs are off in production", path


def test_the_api_docs_are_served_outside_production(resources):
    with TestClient(create_app(resources, run_worker=False)) as client:
        assert "/health" in client.get("/openapi.json").json()["paths"]
        assert "/simulator" not in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()
        assert client.get("/redoc").status_code == 200


# ------------------------------------------------------------------ the simulator

SIMULATOR_GETS = ("/simulator", "/simulator/api/agents", "/simulator/api/messages?channel_id=1&chat_id=x")


def _simulator_codes(res: Resources) -> list[tuple[int, str | None]]:
    with TestClient(create_app(res, run_worker=False)) as client:
        out = []
        for path in SIMULATOR_GETS:
            r = client.get(path)
            out.append((r.status_code, r.json()["error"] if r.status_code == 404 else None))
        return out


def test_the_simulator_is_off_once_a_real_channel_is_connected(resources, green_channel):
    reason = "the simulator is off: a real channel is connected here (SIMULATOR=true turns it on)"
    assert _simulator_codes(resources) == [(404, reason)] * 3


def test_simulator_true_turns_it_on_beside_real_channels(resources, green_channel):
    assert [code for code, _ in _simulator_codes(_with(resources, simulator=True))] == [200, 200, 200]


def test_simulator_true_still_never_reads_a_real_channels_chat(resources, green_channel):
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    run_once(resources.db, snapshot=SNAPSHOT)
    with TestClient(create_app(_with(resources, simulator=True), run_worker=False)) as client:
        r = client.get("/simulator/api/messages", params={"channel_id": green_channel["id"],
                                                          "chat_id": "15550000001@c.us"})
    assert r.status_code == 200 and r.json()["messages"] == []


def test_the_simulator_is_on_with_sandbox_channels_only(resources):
    with resources.db.connection() as conn:
        seed_demo(conn, email="sara@nile-homes.example", password="pw-long-enough",
                  secret_key=resources.settings.secret_key)
    assert [code for code, _ in _simulator_codes(resources)] == [200, 200, 200]


def test_simulator_false_turns_it_off(resources):
    off = (404, "the simulator is off (SIMULATOR=false)")
    assert _simulator_codes(_with(resources, simulator=False)) == [off] * 3


def test_the_simulator_is_never_on_in_production(resources):
    res = _with(resources, app_env="production", simulator=True)
    assert _simulator_codes(res) == [(404, "the simulator is off in production")] * 3


# ------------------------------------------------------------------ settings

PRODUCTION = {"APP_ENV": "production", "APP_SECRET_KEY": "k" * 40, "DATABASE_URL": "postgresql://db/x",
              "REDIS_URL": "redis://r:6379/0"}


def test_simulator_and_health_token_settings():
    assert load_settings({}, env_file=None).simulator is None
    assert load_settings({"SIMULATOR": "true"}, env_file=None).simulator is True
    assert load_settings({"SIMULATOR": "false"}, env_file=None).simulator is False
    assert load_settings({**PRODUCTION, "HEALTH_TOKEN": HEALTH_TOKEN}, env_file=None).health_token == HEALTH_TOKEN
    assert HEALTH_TOKEN not in repr(load_settings({"HEALTH_TOKEN": HEALTH_TOKEN}, env_file=None))
    with pytest.raises(ConfigError, match="SIMULATOR must be true or false"):
        load_settings({"SIMULATOR": "maybe"}, env_file=None)
    with pytest.raises(ConfigError, match="SIMULATOR=true is not allowed in production"):
        load_settings({**PRODUCTION, "SIMULATOR": "true"}, env_file=None)
    with pytest.raises(ConfigError, match="HEALTH_TOKEN must be a real secret"):
        load_settings({**PRODUCTION, "HEALTH_TOKEN": "short"}, env_file=None)


def test_the_new_settings_are_documented():
    example, setup = (ROOT / ".env.example").read_text(), (ROOT / "SETUP.md").read_text()
    for name in ("HEALTH_TOKEN", "SIMULATOR"):
        assert f"\n{name}=" in example and f"`{name}`" in setup


# ------------------------------------------------------------------ a Redis outage while answering


def test_a_reply_that_fails_on_redis_is_released_to_retry_in_seconds(resources, green_channel):
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    run_once(resources.db, snapshot=SNAPSHOT)
    with resources.db.transaction() as conn:
        (claimed,) = conversation_store.claim_due_replies(conn, limit=1, lease_s=60.0)
    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    report = answer_claimed(resources.db, _dead_redis(retries=False), providers, conversation_id=claimed["id"],
                            snapshot=SNAPSHOT)
    assert report.answer.value == "failed" and report.kind == "ConnectionError"
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT reply_claim_until, extract(epoch FROM reply_due_at - now()) AS due_in "
                    "FROM conversations WHERE id = %s", (claimed["id"],))
        row = cur.fetchone()
    assert row["reply_claim_until"] is None
    assert 1.0 < float(row["due_in"]) <= 2.0
