"""Outages of Redis and PostgreSQL under a running app, simulated with a TCP proxy (tests/faultproxy.py).

The machine's PostgreSQL and Redis are shared and never touched: the app under test reaches the server
a test takes away through a `FaultProxy`, and `cut()` / `restore()` on the proxy is the outage. The app is the real one
(`create_app`, served by uvicorn on a free port in a thread of this process, RUN_WORKER on: the event
worker, the responder and the outbox dispatcher run) with `StaticDirectives(SNAPSHOT)` (no burst
window, no pacing), so the time a reply takes is the app's recovery and nothing else. Customers write
through the real webhook route (`POST /webhooks/green-api`, bearer token); replies go to the fake
Green API, where each `sendMessage` is counted per chat.

Durations are scaled down from the issue's figures (said in each test); everything started here
(proxy threads, the served app, pools) is ended when the test ends, on failure too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psycopg2.extensions
import pytest
import redis as redis_lib
import requests
import uvicorn

from execution.lib.db import Database
from execution.lib.resources import Resources
from main import create_app
from tests.conftest import INSTANCE_ID, SNAPSHOT, WEBHOOK_TOKEN, StaticDirectives, load_fixture
from tests.faultproxy import FaultProxy
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.race]

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
TEXT = "Hi, is the 2-bedroom flat still available?"      # answered by the offline responder, never escalated
BURST_WINDOW_S = SNAPSHOT["message_sending_rules"]["burst_window_s"]     # 0 with SNAPSHOT


# ------------------------------------------------------------------ the app, served for real


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedApp:
    """`create_app(...)` under uvicorn in a thread: real HTTP, real lifespan (worker, responder, dispatcher)."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                                    log_level="warning", access_log=False,
                                                    timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, name="served-app", daemon=True)

    def start(self, timeout: float = 30.0) -> "ServedApp":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise AssertionError("the app stopped before it was serving (start-up failed: see the log above)")
            if time.monotonic() > deadline:
                raise AssertionError(f"the app was not serving within {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the served app did not stop within {timeout:.0f} s"


@contextlib.contextmanager
def served(app):
    server = ServedApp(app)
    try:
        yield server.start()
    finally:
        server.stop()


# ------------------------------------------------------------------ where the real servers are


def redis_target(servers) -> tuple[str, int] | str:
    """The run's Redis as a proxy target: (host, port) of TEST_REDIS_URL, or the embedded server's unix socket."""
    if servers.redis_url:
        parts = urlsplit(servers.redis_url)
        if parts.scheme == "unix":
            return parts.path
        return parts.hostname or "127.0.0.1", parts.port or 6379
    return servers.redis_socket


def postgres_target(dsn: str) -> tuple[str, int] | str:
    """The test database's server as a proxy target: (host, port), or the unix socket file (embedded pgserver)."""
    params = psycopg2.extensions.parse_dsn(dsn)
    host, port = params.get("host") or "/var/run/postgresql", int(params.get("port") or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return host, port


def through(proxy: FaultProxy, dsn: str) -> str:
    """`dsn` with its host and port replaced by the proxy's."""
    return psycopg2.extensions.make_dsn(dsn, host=proxy.host, port=proxy.port)


def app_database(settings, dsn: str) -> Database:
    """The pool an entry point builds (open_resources), on `dsn`."""
    return Database(dsn, minconn=settings.db_pool_min, maxconn=settings.db_pool_max, wait_s=settings.db_pool_wait_s,
                    statement_timeout_ms=settings.db_statement_timeout_ms,
                    connect_timeout_s=settings.db_connect_timeout_s).open()


def app_redis(proxy: FaultProxy, index: int) -> redis_lib.Redis:
    """The client an entry point builds for an external REDIS_URL (open_resources), via the proxy."""
    return redis_lib.Redis.from_url(f"redis://{proxy.host}:{proxy.port}/{index}", decode_responses=True,
                                    socket_timeout=5, socket_connect_timeout=5)


# ------------------------------------------------------------------ customers, replies, rows


def chat_of(n: int) -> str:
    return f"2010{n:08d}@c.us"


def customer_body(n: int, msg_id: str) -> dict:
    body = load_fixture("greenapi_incoming_text.json")
    body["instanceData"]["idInstance"] = int(INSTANCE_ID)
    body["idMessage"] = msg_id
    body["timestamp"] = int(time.time())
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat_of(n)
    body["messageData"]["textMessageData"]["textMessage"] = TEXT
    return body


def post(base: str, body: dict, timeout: float = 10.0) -> tuple[int, float]:
    """POST one webhook; (status, seconds). Status 0: no HTTP answer at all."""
    started = time.monotonic()
    try:
        status = requests.post(f"{base}/webhooks/green-api", json=body, headers=AUTH, timeout=timeout).status_code
    except requests.RequestException:
        status = 0
    return status, time.monotonic() - started


def health(base: str, timeout: float = 10.0) -> tuple[int, str, float]:
    """GET /health; (status code, its `status`, seconds)."""
    started = time.monotonic()
    try:
        r = requests.get(f"{base}/health", timeout=timeout)
        state = r.json().get("status", "?")
        code = r.status_code
    except (requests.RequestException, ValueError) as exc:
        code, state = 0, type(exc).__name__
    return code, state, time.monotonic() - started


def replies(fake, chats) -> dict[str, list[float]]:
    """Accepted sendMessage calls per chat: the wall-clock times the fake Green API took them."""
    wanted = set(chats)
    out: dict[str, list[float]] = {c: [] for c in wanted}
    for call in fake.calls("sendMessage"):
        chat = call["body"].get("chatId")
        if chat in wanted and call.get("id_message"):
            out[chat].append(call["at"])
    return out


def rows(db, sql: str, params=()) -> list[dict]:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def event_states(db, chats) -> Counter:
    return Counter(r["status"] for r in rows(db, "SELECT status FROM webhook_events WHERE chat_id = ANY(%s)",
                                             (list(chats),)))


def ai_messages_per_chat(db, chats) -> Counter:
    found = rows(db, "SELECT c.chat_id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                     "WHERE m.author = 'ai' AND c.chat_id = ANY(%s)", (list(chats),))
    return Counter(r["chat_id"] for r in found)


def at_rate(base: str, bodies: list[dict], per_s: float, pool: ThreadPoolExecutor) -> list[tuple[int, float]]:
    """POST `bodies` at `per_s` a second (each on time, whatever the previous ones take); their results, in order."""
    start = time.monotonic()
    futures = []
    for i, body in enumerate(bodies):
        delay = start + i / per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        futures.append(pool.submit(post, base, body))
    return [f.result(timeout=30) for f in futures]


class HealthWatch:
    """Polls /health every `every_s` in a thread while the block runs; `seen` is [(code, status, seconds)]."""

    def __init__(self, base: str, every_s: float = 0.5) -> None:
        self.base, self.every_s = base, every_s
        self.seen: list[tuple[int, str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(health(self.base))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "HealthWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


# ------------------------------------------------------------------ 1. Redis down while customers write


REDIS_DOWN_S = 15.0          # the issue says 60 s; scaled down
RATE_PER_S = 10.0
RESUME_BOUND_S = 5.0 + BURST_WINDOW_S
BASELINE = 50                # customers answered before the outage, all at once: the app's answering pace


def test_redis_down_while_customers_write_every_webhook_is_stored_and_replies_resume_within_5s(
        resources, green_channel, fake_green_api, servers, redis_db_index):
    """Issue: "Redis down 60 s at 10 messages/s: all stored; replies resume within 5 s of its return".

    Scaled to 15 s of outage at 10 messages/s: 150 customers, one message each, all waiting when Redis
    returns. While Redis is cut: every webhook is answered 200 and stored (webhook_events) and applied by
    the worker (it needs only PostgreSQL); /health is 200 `degraded` each time it is asked (every 0.5 s).
    After `restore()`: every customer has exactly one reply at the fake Green API (and one AI message);
    replies resume within 5 s (+ the burst window, 0 here), and the whole backlog is answered within
    5 s (+ burst) of Redis' return plus the time this app needs to answer 150 customers at its own pace,
    measured in the same run before the outage (50 customers at once). Measured and printed: restore to
    the first and to the last reply, and that drain allowance. (On a busy two-core machine a backlog of
    150 can take more than 5 s to answer at the pace of REPLY_WORKERS=8, outage or not: the allowance
    separates what the outage costs from what the backlog costs.)
    """
    settings = resources.settings
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy(redis_target(servers)))
        client = app_redis(proxy, redis_db_index)
        stack.callback(client.close)
        db = app_database(settings, resources.db.dsn)
        stack.callback(db.close)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=16, thread_name_prefix="customer"))
        app = stack.enter_context(served(create_app(Resources(settings, db, client, "test", "test"), run_worker=True,
                                                    directives=StaticDirectives(SNAPSHOT))))
        assert health(app.base)[:2] == (200, "ok")

        # Before the outage: the pace at which this app answers a crowd (its Redis connections are live at the cut).
        warm = [chat_of(i) for i in range(10_000, 10_000 + BASELINE)]
        started_wall = time.time()
        assert {code for code, _ in pool.map(lambda i: post(app.base, customer_body(i, f"REDIS-WARM-{i}")),
                                             range(10_000, 10_000 + BASELINE))} == {200}
        wait_for(lambda: all(replies(fake_green_api, warm).values()), timeout=60, step=0.05)
        pace = BASELINE / (max(min(v) for v in replies(fake_green_api, warm).values()) - started_wall)

        n = int(REDIS_DOWN_S * RATE_PER_S)
        chats = [chat_of(i) for i in range(1, n + 1)]
        bodies = [customer_body(i, f"REDIS-DOWN-{i:05d}") for i in range(1, n + 1)]
        severed = proxy.cut()
        cut_at = time.monotonic()
        with HealthWatch(app.base) as watch:
            results = at_rate(app.base, bodies, RATE_PER_S, pool)
            # Still down: everything the customers wrote is applied without Redis.
            wait_for(lambda: event_states(db, chats) == Counter(done=n), timeout=15, step=0.2)
            down_for = time.monotonic() - cut_at
        sent_while_down = sum(len(v) for v in replies(fake_green_api, chats).values())
        restored_wall = time.time()
        proxy.restore()

        drain_bound = RESUME_BOUND_S + n / pace
        wait_for(lambda: all(replies(fake_green_api, chats).values()), timeout=drain_bound + 20, step=0.05)
        got = replies(fake_green_api, chats)
        first_after = min(min(v) for v in got.values()) - restored_wall
        last_after = max(min(v) for v in got.values()) - restored_wall
        time.sleep(2.0)     # a duplicate would show up here
        everyone = [*warm, *chats]
        got = replies(fake_green_api, everyone)
        ai = ai_messages_per_chat(resources.db, everyone)

        codes = Counter(code for code, _ in results)
        latencies = [s for _, s in results]
        health_seen = Counter((code, state) for code, state, _ in watch.seen)
        per_half_second = Counter(int((min(got[c]) - restored_wall) / 0.5) * 0.5 for c in chats)
        print(f"\n[redis outage] pace before the outage: {pace:.1f} replies/s ({BASELINE} customers at once)")
        print(f"[redis outage] {n} webhooks at {RATE_PER_S:g}/s during {down_for:.1f} s of outage "
              f"({severed} open connection(s) severed, {proxy.refused} refused): statuses {dict(codes)}, "
              f"latency p50 {_p(latencies, .5) * 1000:.0f} ms, p99 {_p(latencies, .99) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")
        print(f"[redis outage] /health while down: {dict(health_seen)}, slowest "
              f"{max(s for *_, s in watch.seen) * 1000:.0f} ms; replies sent while down: {sent_while_down}")
        print(f"[redis outage] after restore: first reply +{first_after:.2f} s, last of {n} +{last_after:.2f} s "
              f"(resume bound {RESUME_BOUND_S:g} s; drain bound {RESUME_BOUND_S:g} + {n} / {pace:.1f} = "
              f"{drain_bound:.1f} s)")
        print(f"[redis outage] replies per 0.5 s after restore: {dict(sorted(per_half_second.items()))}")

        assert codes == Counter({200: n}), f"webhooks not all 200 while Redis was down: {dict(codes)}"
        assert event_states(db, chats) == Counter(done=n)
        assert watch.seen and set(health_seen) == {(200, "degraded")}, f"/health while Redis was down: {health_seen}"
        assert first_after <= RESUME_BOUND_S, f"replies resumed {first_after:.2f} s after Redis returned"
        assert last_after <= drain_bound, (
            f"the last customer was answered {last_after:.2f} s after Redis returned (bound {drain_bound:.1f} s)")
        repeated = {chat: len(times) for chat, times in got.items() if len(times) != 1}
        assert not repeated, f"customers without exactly one reply: {repeated}"
        assert all(ai[chat] == 1 for chat in got), "a customer has other than one AI message on the timeline"
        assert health(app.base)[:2] == (200, "ok")
    assert proxy.threads_alive() == 0


# ------------------------------------------------------------------ 2. PostgreSQL down


PG_DOWN_S = 10.0             # the issue says 30 s; scaled down
PG_RATE_PER_S = 5.0
RESEND_EVERY_S = 0.5         # Green API redelivers after a minute; scaled down
IN_FLIGHT = 10
LOOP_MAX_BACKOFF_S = 30.0    # execution/lib/loop.py: a loop that met the outage sleeps up to this long
CLAIM_LEASE_S = 60.0         # the worker's and responder's claims: what a cut left half-done waits for this


def test_postgres_down_never_200_and_resent_webhooks_are_answered_exactly_once(
        resources, green_channel, fake_green_api):
    """Issue: "PostgreSQL down 30 s: never a 200; after it returns, re-sent webhooks answered exactly once".

    Scaled to 10 s of outage with a customer writing every 0.2 s (50 customers). Before the cut, 3
    customers are answered and 10 more are acknowledged (200) right before it, so the cut finds the
    worker and the responder mid-way. While PostgreSQL is cut: every webhook is answered 503 (never
    200, never another code) and /health is 503 `down`. After `restore()` every webhook that did not
    get 200 is re-sent until it gets 200, as Green API redelivers (every 0.5 s here, a minute there),
    with the same app and pool (the cut left broken connections in it: no restart). Then every one of
    the 63 customers has exactly one reply at the fake Green API, one stored event and one AI message.
    Bounds: the redelivered within the loops' longest back-off (30 s) + 5 s; the ten acknowledged just
    before the cut within the claims' lease (60 s) + 15 s, since a claim the cut interrupted is only
    taken again when its lease runs out. The times are printed.
    """
    settings = resources.settings
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy(postgres_target(resources.db.dsn)))
        db = app_database(settings, through(proxy, resources.db.dsn))
        stack.callback(db.close)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=16, thread_name_prefix="customer"))
        app = stack.enter_context(served(create_app(Resources(settings, db, resources.redis, "test", "test"),
                                                    run_worker=True, directives=StaticDirectives(SNAPSHOT))))
        assert health(app.base)[:2] == (200, "ok")

        before = [chat_of(i) for i in range(3)]
        for i in range(3):
            assert post(app.base, customer_body(i, f"PG-BEFORE-{i}"))[0] == 200
        wait_for(lambda: all(replies(fake_green_api, before).values()), timeout=15)

        in_flight = [chat_of(i) for i in range(100, 100 + IN_FLIGHT)]
        acked = list(pool.map(lambda i: post(app.base, customer_body(i, f"PG-INFLIGHT-{i}")),
                              range(100, 100 + IN_FLIGHT)))
        assert [code for code, _ in acked] == [200] * IN_FLIGHT
        severed = proxy.cut()            # at once: the worker and responder are busy with those ten
        answered_before_cut = sum(1 for v in replies(fake_green_api, in_flight).values() if v)
        cut_at = time.monotonic()

        n = int(PG_DOWN_S * PG_RATE_PER_S)
        down_chats = [chat_of(i) for i in range(1000, 1000 + n)]
        bodies = {chat_of(i): customer_body(i, f"PG-DOWN-{i:05d}") for i in range(1000, 1000 + n)}
        with HealthWatch(app.base) as watch:
            results = at_rate(app.base, list(bodies.values()), PG_RATE_PER_S, pool)
            while time.monotonic() - cut_at < PG_DOWN_S:
                time.sleep(0.05)
        down_for = time.monotonic() - cut_at
        health_down = Counter((code, state) for code, state, _ in watch.seen)
        codes = Counter(code for code, _ in results)
        restored = time.monotonic()
        restored_wall = time.time()
        proxy.restore()

        # Green API redelivers what was not acknowledged, until it is.
        unacked = [chat for chat, (code, _) in zip(bodies, results) if code != 200]

        def redeliver(chat: str) -> tuple[int, float]:
            attempts = 0
            while True:
                attempts += 1
                if post(app.base, bodies[chat], timeout=10)[0] == 200:
                    return attempts, time.monotonic() - restored
                if time.monotonic() - restored > 60:
                    return -attempts, time.monotonic() - restored
                time.sleep(RESEND_EVERY_S)

        redelivered = dict(zip(unacked, pool.map(redeliver, unacked)))
        healthy_after = wait_for(lambda: health(app.base)[:2] == (200, "ok") and time.monotonic() - restored,
                                 timeout=30, step=0.1)

        everyone = [*before, *in_flight, *down_chats]
        # A claim the cut interrupted is taken again when its lease runs out: allow for it.
        wait_for(lambda: all(replies(fake_green_api, everyone).values()), timeout=CLAIM_LEASE_S + 30, step=0.1)
        got = replies(fake_green_api, everyone)
        time.sleep(2.0)     # a duplicate would show up here
        got = replies(fake_green_api, everyone)
        events = rows(resources.db, "SELECT chat_id, status FROM webhook_events WHERE chat_id = ANY(%s)", (everyone,))
        ai = ai_messages_per_chat(resources.db, everyone)

        def after_restore(chats) -> float:
            return max(min(got[c]) for c in chats) - restored_wall

        attempts = [a for a, _ in redelivered.values()]
        print(f"\n[postgres outage] {down_for:.1f} s down ({severed} open connection(s) severed, {proxy.refused} "
              f"refused; {answered_before_cut}/{IN_FLIGHT} acked-before-cut customers already answered at the cut)")
        print(f"[postgres outage] {n} webhooks while down: {dict(codes)}; /health while down: {dict(health_down)}")
        print(f"[postgres outage] after restore: /health ok at +{healthy_after:.2f} s; {len(unacked)} redelivered, "
              f"attempts each: {dict(Counter(attempts))}, last 200 at +{max(t for _, t in redelivered.values()):.2f} s")
        print(f"[postgres outage] last reply after restore: redelivered +{after_restore(down_chats):.2f} s, "
              f"acked before the cut +{after_restore(in_flight):.2f} s")

        assert 200 not in codes, f"a webhook got 200 while PostgreSQL was down: {dict(codes)}"
        assert codes == Counter({503: n}), f"webhooks while PostgreSQL was down: {dict(codes)} (expected 503 only)"
        assert watch.seen and set(health_down) == {(503, "down")}, f"/health while PostgreSQL was down: {health_down}"
        assert all(a > 0 for a in attempts), f"webhooks never acknowledged after the restore: {redelivered}"
        assert Counter(e["chat_id"] for e in events) == Counter(everyone), "not exactly one stored event per customer"
        assert all(e["status"] == "done" for e in events), Counter(e["status"] for e in events)
        repeated = {chat: len(times) for chat, times in got.items() if len(times) != 1}
        assert not repeated, f"customers without exactly one reply: {repeated}"
        assert all(ai[chat] == 1 for chat in everyone), "a customer has other than one AI message on the timeline"
        assert after_restore(down_chats) <= LOOP_MAX_BACKOFF_S + 5
        assert after_restore(in_flight) <= CLAIM_LEASE_S + 15
    assert proxy.threads_alive() == 0


# ------------------------------------------------------------------ 3. PostgreSQL blinks


def test_after_postgres_drops_every_connection_and_is_back_at_once_webhooks_are_acknowledged(
        resources, green_channel, fake_green_api):
    """A restart, a failover or a proxy dropping idle connections: PostgreSQL closes every connection and
    answers again at once. The app's pool still holds the dead connections; the database is up, so the
    next webhooks must get 200 and /health must say `ok` (none of them may be failed for a connection
    the pool knew nothing about). Nothing is waited for: the cut and the restore are back to back."""
    settings = resources.settings
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy(postgres_target(resources.db.dsn)))
        db = app_database(settings, through(proxy, resources.db.dsn))
        stack.callback(db.close)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=16, thread_name_prefix="customer"))
        app = stack.enter_context(served(create_app(Resources(settings, db, resources.redis, "test", "test"),
                                                    run_worker=True, directives=StaticDirectives(SNAPSHOT))))
        # A crowd first, so the pool holds several connections (as a busy app's does).
        crowd = [chat_of(i) for i in range(30)]
        assert {code for code, _ in pool.map(lambda i: post(app.base, customer_body(i, f"BLINK-BEFORE-{i}")),
                                             range(30))} == {200}
        wait_for(lambda: all(replies(fake_green_api, crowd).values()), timeout=60, step=0.05)
        pooled = proxy.open_connections()
        assert pooled >= 3, f"the pool holds {pooled} connection(s): too few to show anything"

        severed = proxy.cut()
        proxy.restore()
        after = [post(app.base, customer_body(i, f"BLINK-AFTER-{i}"))[0] for i in range(100, 105)]
        first_health = health(app.base)[:2]
        print(f"\n[postgres blink] {severed} pooled connection(s) dropped; the next 5 webhooks: {after}; "
              f"/health then: {first_health}")
        assert after == [200] * 5 and first_health == (200, "ok"), (
            f"with PostgreSQL up, webhooks answered {after} and /health {first_health}")
    assert proxy.threads_alive() == 0
