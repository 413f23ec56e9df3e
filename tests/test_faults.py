"""Faults with real processes: the app under uvicorn and `python -m execution.worker` as subprocesses, the test
PostgreSQL and Redis, and fake Green API servers speaking the real wire format.

1. Acked means durable and answered exactly once, through three SIGKILLs of the web process.
2. Killed mid-answer (after the claim, before the provider got the send, while the provider held it,
   after it answered): every customer answered once after the restart.
3. Provider down: replies queue (`retrying`), nothing fails, each goes once and in order when it is back.
4. Pacing over a run: no two sends on one number closer than the shipped 1000 ms.
5. A phone takeover acknowledged behind a backlog of 3,000 events: no AI send in that chat after the ack;
   the takeover-to-effect latency is printed (`-s`) and recorded (record_property).

The processes run with the shipped directives (`DirectiveStore` always reads `directives/`; no setting
points it elsewhere): a 1.5 s burst window and 1 s pacing per Green API number, so the many-customer
tests spread customers over many numbers (one fake server each). Waits the product takes after a crash
that are longer than a test can afford (a send's claim, 120 s; Green API's journal delay, 180 s; in
test 1 also the 60 s leases) are aged in the database while no process runs, and said so where done.
FAULTS_SEED fixes test 1's kill moments; FAULTS_TAKEOVER_TRIALS sets test 5's trials (5).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter

import pytest
import requests

from execution.lib import tenant_store
from execution.lib.channel_directory import ChannelDirectory
from execution.lib.db import connect
from execution.lib.guards import LOCK_CONVERSATION
from execution.lib.providers.base import WebhookRequest
from execution.lib.security import encrypt_secret, hash_token
from execution.webhook_handler import Receipt, authorize, read_request, store_events
from execution.worker import run_once
from tests.conftest import SHIPPED, WEBHOOK_TOKEN, load_fixture, post_green_api
from tests.fakes.green_api_server import _PATH, FakeGreenApi
from tests.processes import AppServer, Processes, redis_url, service_env
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.race]

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
TEXT = "Hi, is the 2-bedroom flat still available?"     # answered, never escalated
SENDING = SHIPPED["message_sending_rules"]
INTERVAL_S = SENDING["send_interval_ms"]["green_api"] / 1000
CLOCK_NOISE_S = 0.005


# ------------------------------------------------------------------ the fake, with two more faults


class FaultyGreenApi(FakeGreenApi):
    """The fake Green API plus an outage and a stall, both for sendMessage only.

    - outage: until `down_until` (time.time()) every sendMessage is answered 503 and not taken;
    - ("stall", s) in a sendMessage plan: the request is held s seconds and never taken (the provider
      never got the message: it is not in the journal), then refused with 503 if anyone still listens.
    Refused requests are recorded like the others, with `refused` set and no `id_message`.
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.down_until = 0.0

    def _answer(self, path: str, raw: bytes):
        m = _PATH.match(path)
        if m and m["method"] == "sendMessage" and m["instance"] == self.instance_id and m["token"] == self.token:
            with self._lock:
                plan = self._plans["sendMessage"]
                stall = plan.popleft() if plan and isinstance(plan[0], tuple) and plan[0][0] == "stall" else None
                down = time.time() < self.down_until
                if stall or down:
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        body = {}
                    self.requests.append({"method": "sendMessage", "instance": m["instance"], "token_ok": True,
                                          "body": body, "at": time.time(), "refused": "stall" if stall else "down"})
            if stall:
                return 503, {"error": "status 503"}, stall[1]
            if down:
                return 503, {"error": "status 503"}, 0
        return super()._answer(path, raw)


def accepted(fake: FakeGreenApi, chat: str | None = None) -> list[dict]:
    """sendMessage requests the provider took (in the journal), optionally for one chat, in arrival order."""
    return [c for c in fake.calls("sendMessage")
            if c.get("id_message") and (chat is None or c["body"].get("chatId") == chat)]


def start_fakes(n: int, base: int) -> list[FaultyGreenApi]:
    return [FaultyGreenApi(instance_id=str(base + i), token=f"fault-api-token-{base + i}").start() for i in range(n)]


def stop_fakes(fakes) -> None:
    for fake in fakes:
        fake.stop()


# ------------------------------------------------------------------ tenants, bodies, the database


def make_channels(resources, fakes, *, slug: str) -> tuple[int, list[dict]]:
    """One agency and agent with a Green API number per fake (committed); returns (organization id, channels)."""
    key = resources.settings.secret_key
    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug=slug, name=slug)
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email=f"agent@{slug}.example", name="Agent",
                                          password_hash=None, phone="15550000000")
        channels = []
        for fake in fakes:
            row = tenant_store.upsert_channel(
                c, organization_id=org["id"], agent_id=agent["id"], provider="green_api",
                instance_id=fake.instance_id, api_url=fake.url,
                api_token_encrypted=encrypt_secret(key, fake.token), webhook_token_hash=hash_token(WEBHOOK_TOKEN))
            channels.append(tenant_store.get_channel(c, channel_id=row["id"]))
    return org["id"], channels


def customer_body(instance: str, chat: str, msg_id: str, text: str = TEXT) -> dict:
    body = load_fixture("greenapi_incoming_text.json")
    body["instanceData"]["idInstance"] = int(instance)
    body["idMessage"] = msg_id
    body["timestamp"] = int(time.time())
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


def phone_reply_body(instance: str, chat: str, msg_id: str) -> dict:
    body = load_fixture("greenapi_outgoing_from_phone.json")
    body["instanceData"]["idInstance"] = int(instance)
    body["idMessage"] = msg_id
    body["timestamp"] = int(time.time())
    body["senderData"]["chatId"] = chat
    return body


def rows(db, sql: str, params=()) -> list[dict]:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def one(db, sql: str, params=()) -> dict | None:
    found = rows(db, sql, params)
    return found[0] if found else None


def app_env(resources, servers, redis_db_index, test_dsn, tmp_path, *, run_worker: bool = True) -> dict:
    return service_env(database_url=test_dsn, redis_url=redis_url(servers, redis_db_index),
                       secret_key=resources.settings.secret_key, data_dir=tmp_path / "data", run_worker=run_worker)


def post(app: AppServer, body: dict, timeout: float = 10.0) -> requests.Response:
    return requests.post(f"{app.base}/webhooks/green-api", json=body, headers=AUTH, timeout=timeout)


def deliver_until_acked(app: AppServer, body: dict, *, deadline: float) -> tuple[dict, int]:
    """Send one webhook until it gets 200, as Green API redelivers; (the 200's JSON, failed attempts)."""
    failures = 0
    while True:
        try:
            response = post(app, body, timeout=5)
            if response.status_code == 200:
                return response.json(), failures
        except requests.RequestException:
            pass
        failures += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"webhook {body['idMessage']} not acknowledged after {failures} attempts")
        time.sleep(0.1)


def conversation(db, channel_id: int, chat: str) -> dict | None:
    return one(db, "SELECT * FROM conversations WHERE channel_id = %s AND chat_id = %s", (channel_id, chat))


def outbox_of(db, channel_id: int, chat: str) -> list[dict]:
    return rows(db, "SELECT o.* FROM outbox o JOIN conversations c ON c.id = o.conversation_id "
                    "WHERE o.channel_id = %s AND c.chat_id = %s ORDER BY o.id", (channel_id, chat))


def age_stranded_sends(db) -> int:
    """Let the claims of `pending` sends run out and Green API's journal delay pass, without waiting for them.

    Only while no sender process runs: every `pending` row then belongs to a process that was killed.
    What this skips is send_claim_s (120 s) and GreenApiProvider.JOURNAL_DELAY_S (180 s, counted from
    the attempt's start) of waiting.
    """
    with db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE outbox SET claimed_until = now() - interval '1 second', "
                    "created_at = created_at - interval '5 minutes', "
                    "attempt_started_at = attempt_started_at - interval '5 minutes' WHERE status = 'pending'")
        return cur.rowcount


def expire_dead_leases(db, redis) -> dict:
    """The leases a killed web process held run out now instead of later (only while no process runs).

    Skipped waits: the event lease (60 s), the reply claim (60 s), the conversation lock's TTL (30 s),
    and the stranded sends' claim and journal delay (age_stranded_sends).
    """
    with db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE webhook_events SET lease_until = now() WHERE status = 'processing'")
        events = cur.rowcount
        cur.execute("UPDATE conversations SET reply_claim_until = now() WHERE reply_claim_until > now()")
        replies = cur.rowcount
    locks = list(redis.scan_iter(f"{LOCK_CONVERSATION}*"))
    if locks:
        redis.delete(*locks)
    return {"events": events, "replies": replies, "locks": len(locks), "sends": age_stranded_sends(db)}


def lock_waiters(db, like: str) -> int:
    return one(db, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock' AND query ILIKE %s", (like,))["n"]


def blocker(test_dsn):
    """A connection of the test's own, in a transaction, to hold a lock a step of the app needs."""
    conn = connect(test_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("BEGIN")
    return conn


def release(conn) -> None:
    if conn is not None and not conn.closed:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")
        conn.close()


# ------------------------------------------------------------------ 1. acked means durable, answered once

N_CHATS = 200
N_NUMBERS = 20          # 10 customers per number: 1 s pacing keeps the run short
KILL_WINDOWS_S = ((0.5, 2.5), (3.0, 5.5), (6.0, 10.0))   # s after the first webhook: intake, then sending


def test_acked_webhooks_survive_sigkills_and_every_customer_is_answered_exactly_once(
        resources, servers, redis_db_index, test_dsn, tmp_path, record_property):
    seed = int(os.environ.get("FAULTS_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    fakes = start_fakes(N_NUMBERS, 1101500000)
    try:
        with Processes(tmp_path) as procs:
            _, channels = make_channels(resources, fakes, slug="faults-kill")
            app = AppServer(procs, app_env(resources, servers, redis_db_index, test_dsn, tmp_path)).start()
            customers = [(fakes[n % N_NUMBERS], channels[n % N_NUMBERS], f"2011{n:08d}@c.us", f"KILL{n:016d}")
                         for n in range(N_CHATS)]
            acked: dict[str, dict] = {}
            failed_attempts = [0]
            sender_errors: list[BaseException] = []

            def send_all() -> None:
                try:
                    deadline = time.monotonic() + 120
                    for fake, _, chat, msg_id in customers:
                        acked[msg_id], failures = deliver_until_acked(
                            app, customer_body(fake.instance_id, chat, msg_id), deadline=deadline)
                        failed_attempts[0] += failures
                        time.sleep(0.01)
                except BaseException as exc:      # reported by the main thread
                    sender_errors.append(exc)

            started = time.monotonic()
            sender = threading.Thread(target=send_all, name="green-api-sender", daemon=True)
            sender.start()
            kills = []
            for low, high in KILL_WINDOWS_S:
                at = rng.uniform(low, high)
                time.sleep(max(0.0, started + at - time.monotonic()))
                app.kill()
                expired = expire_dead_leases(resources.db, resources.redis)
                kills.append({"at_s": round(time.monotonic() - started, 2), "acked_before": len(acked), **expired})
                app.start()
            sender.join(150)
            assert not sender.is_alive(), "the sender did not finish"
            assert not sender_errors, sender_errors
            posted_s = time.monotonic() - started

            # Every acknowledged request is stored, right now: its 200 came after its commit.
            keys = {r["event_key"]: r["id"] for r in rows(resources.db, "SELECT id, event_key FROM webhook_events")}
            for fake, _, _, msg_id in customers:
                key = f"{fake.instance_id}:incomingMessageReceived:{msg_id}"
                assert key in keys, f"acknowledged webhook {msg_id} is not stored"
                if acked[msg_id]["outcome"] == "stored":
                    assert acked[msg_id]["event_id"] == keys[key]

            def all_answered() -> bool:
                return all(accepted(fake, chat) for fake, _, chat, _ in customers)

            try:
                wait_for(all_answered, timeout=90, step=0.25)
            except AssertionError:
                missing = [chat for fake, _, chat, _ in customers if not accepted(fake, chat)]
                raise AssertionError(f"{len(missing)} customers never answered, e.g. {missing[:5]}; kills={kills}\n"
                                     f"{app.logs()}") from None
            answered_s = time.monotonic() - started
            time.sleep(3)   # anything late would be a duplicate
            applied = {r["provider_message_id"] for r in rows(
                resources.db, "SELECT provider_message_id FROM messages WHERE author = 'customer'")}
            assert applied == {msg_id for _, _, _, msg_id in customers}
            assert one(resources.db, "SELECT count(*) AS n FROM webhook_events WHERE status <> 'done'")["n"] == 0
            per_chat = Counter(c["body"]["chatId"] for fake in fakes for c in accepted(fake))
            duplicates = {chat: n for chat, n in per_chat.items() if n > 1}
            strangers = set(per_chat) - {chat for _, _, chat, _ in customers}
            statuses = Counter(r["status"] for r in rows(resources.db, "SELECT status FROM outbox"))
            gaps = [b["at"] - a["at"] for fake in fakes for a, b in zip(accepted(fake), accepted(fake)[1:])]
            figures = {"seed": seed, "kills": kills, "failed_deliveries_resent": failed_attempts[0],
                       "posted_s": round(posted_s, 1), "all_answered_s": round(answered_s, 1),
                       "duplicates": len(duplicates), "outbox": dict(statuses),
                       "min_gap_ms": round(min(gaps) * 1000, 1)}
            print(f"\n[faults] acked-durable: {figures}")
            record_property("acked_durable", json.dumps(figures))
            assert duplicates == {}, f"customers answered more than once: {duplicates} (seed {seed})"
            assert strangers == set()
            assert sum(per_chat.values()) == N_CHATS
            assert statuses == {"sent": N_CHATS}, statuses
    finally:
        stop_fakes(fakes)


# ------------------------------------------------------------------ 2. killed mid-answer


def test_a_web_process_killed_mid_answer_answers_everyone_once_after_restart(
        resources, servers, redis_db_index, test_dsn, tmp_path, record_property):
    """One SIGKILL catches four customers, each at another step of being answered, on four numbers:

    A  reply claimed, the answer under way (holding the conversation lock), nothing written yet;
    B  outbox row written, the provider never got the request (it stalled before taking it);
    C  the provider took the request and had not answered yet;
    D  the provider answered (accepted), the outcome was not recorded yet.
    After the restart A waits for its claim (60 s lease) and lock (30 s TTL) to run out, naturally;
    B, C and D are settled from the provider's journal (`lastOutgoingMessages`) by the reconciler,
    their send claim (120 s) and the journal delay (180 s) aged in the database instead of waited for.
    """
    fakes = start_fakes(4, 1101600000)
    fake = dict(zip("ABCD", fakes))
    chat = {k: f"201200000{i}01@c.us" for i, k in enumerate("ABCD")}
    holds: list = []
    try:
        with Processes(tmp_path) as procs:
            org_id, channels = make_channels(resources, fakes, slug="faults-mid")
            channel = dict(zip("ABCD", channels))
            app = AppServer(procs, app_env(resources, servers, redis_db_index, test_dsn, tmp_path)).start()

            def write(k: str, n: int = 1) -> None:
                assert post(app, customer_body(fake[k].instance_id, chat[k], f"MID{k}{n:012d}")).status_code == 200

            # B: the provider never gets it.
            fake["B"].plan("sendMessage", ("stall", 45))
            write("B")
            wait_for(lambda: fake["B"].calls("sendMessage"), timeout=15)
            # C: the provider takes it and is slow to answer.
            fake["C"].plan("sendMessage", ("slow", 45))
            write("C")
            wait_for(lambda: accepted(fake["C"], chat["C"]), timeout=15)
            # A: its message is applied; its reply, due after the burst window, is held back meanwhile.
            write("A")
            wait_for(lambda: (conversation(resources.db, channel["A"]["id"], chat["A"]) or {}).get("reply_due_at"),
                     timeout=10, step=0.01)
            held = rows(resources.db, "UPDATE conversations SET reply_due_at = now() + interval '1 hour' "
                                      "WHERE channel_id = %s AND chat_id = %s AND reply_claim_until IS NULL RETURNING id",
                        (channel["A"]["id"], chat["A"]))
            assert len(held) == 1 and not accepted(fake["A"]), "A was answered before the test could hold it"
            # D: the provider answers; recording it waits for the channel row the test holds.
            hold_d = blocker(test_dsn)
            holds.append(hold_d)
            with hold_d.cursor() as cur:
                cur.execute("SELECT id FROM channels WHERE id = %s FOR NO KEY UPDATE", (channel["D"]["id"],))
            write("D")
            wait_for(lambda: accepted(fake["D"], chat["D"]) and lock_waiters(resources.db, "%UPDATE channels%"),
                     timeout=15, step=0.02)
            # A is due now: claimed, its answer (holding the conversation lock) waits in the load for the agents
            # table the test holds. Both holds must be killed inside the app's 5 s statement timeout.
            hold_a = blocker(test_dsn)
            holds.append(hold_a)
            with hold_a.cursor() as cur:
                cur.execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
            rows(resources.db, "UPDATE conversations SET reply_due_at = now() WHERE id = %s", (held[0]["id"],))
            wait_for(lambda: conversation(resources.db, channel["A"]["id"], chat["A"])["reply_claim_until"]
                     and lock_waiters(resources.db, "%agents%"), timeout=4, step=0.02)
            assert lock_waiters(resources.db, "%UPDATE channels%") == 1, "D's recording gave up before the kill"

            at_kill = {k: [r["status"] for r in outbox_of(resources.db, channel[k]["id"], chat[k])] for k in "ABCD"}
            a_claim_ends = conversation(resources.db, channel["A"]["id"], chat["A"])["reply_claim_until"].timestamp()
            app.kill()
            killed = time.monotonic()
            for hold in holds:
                release(hold)
            holds.clear()
            assert at_kill == {"A": [], "B": ["pending"], "C": ["pending"], "D": ["pending"]}, at_kill
            assert [len(accepted(fake[k], chat[k])) for k in "ABCD"] == [0, 0, 1, 1]
            wait_for(lambda: lock_waiters(resources.db, "%") == 0, timeout=10)   # the dead process's backends end
            aged = age_stranded_sends(resources.db)
            assert aged == 3
            app.start()
            restarted = time.monotonic()

            answered_after: dict[str, float] = {}

            def settled() -> bool:
                for k in "ABCD":
                    if k in answered_after:
                        continue
                    sent = [r for r in outbox_of(resources.db, channel[k]["id"], chat[k]) if r["status"] == "sent"]
                    if accepted(fake[k], chat[k]) and sent:
                        answered_after[k] = time.monotonic() - restarted
                return len(answered_after) == 4

            try:
                wait_for(settled, timeout=65, step=0.2)
            except AssertionError:
                raise AssertionError(f"not answered within 65 s of the restart: "
                                     f"{sorted(set('ABCD') - set(answered_after))}; outbox="
                                     f"{ {k: outbox_of(resources.db, channel[k]['id'], chat[k]) for k in 'ABCD'} }\n"
                                     f"{app.logs()}") from None
            # Nothing left to answer anywhere, then a moment for anything late.
            wait_for(lambda: one(resources.db, "SELECT count(*) AS n FROM conversations WHERE organization_id = %s "
                                               "AND (reply_due_at IS NOT NULL OR reply_claim_until IS NOT NULL)",
                                 (org_id,))["n"] == 0, timeout=30, step=0.2)
            time.sleep(2)
            sends = {k: accepted(fake[k], chat[k]) for k in "ABCD"}
            duplicates = {k: len(v) - 1 for k, v in sends.items()}
            pmids = {k: [r["provider_message_id"] for r in outbox_of(resources.db, channel[k]["id"], chat[k])]
                     for k in "ABCD"}
            a_after_claim_ran_out = sends["A"][0]["at"] - a_claim_ends
            figures = {"answered_after_restart_s": {k: round(v, 1) for k, v in sorted(answered_after.items())},
                       "restart_after_kill_s": round(restarted - killed, 1),
                       "A_answered_after_its_dead_claim_ran_out_s": round(a_after_claim_ran_out, 2),
                       "duplicates": duplicates}
            print(f"\n[faults] killed mid-answer: {figures}")
            record_property("killed_mid_answer", json.dumps(figures))
            assert duplicates == {"A": 0, "B": 0, "C": 0, "D": 0}, figures
            # B, C, D within 60 s of the restart (in fact at once). A's bound is its dead claim's lease (the
            # responder's 60 s, taken just before the kill): answered as soon as it ran out, so at most a
            # restart's duration past 60 s after the restart.
            assert all(answered_after[k] <= 60 for k in "BCD"), figures
            # (+ the answer itself: its escalation check and send take a few seconds on a loaded 2-core machine)
            assert 0 <= a_after_claim_ran_out <= 6, figures
            # Settled with the provider's own id: the one the fake gave when it took the message.
            assert pmids == {k: [sends[k][0]["id_message"]] for k in "ABCD"}, pmids
            assert [c.get("refused") for c in fake["B"].calls("sendMessage")] == ["stall", None]
    finally:
        for hold in holds:
            release(hold)
        stop_fakes(fakes)


# ------------------------------------------------------------------ 3. provider down

OUTAGE_S = 20.0          # scaled down from 2 minutes
OUTAGE_CUSTOMERS = 5
OUTAGE_SPACING_S = 3.0   # longer than the burst window: each customer is answered on their own, in turn


def test_provider_down_queues_replies_and_each_goes_once_in_order_when_it_is_back(
        resources, servers, redis_db_index, test_dsn, tmp_path, record_property):
    [fake] = start_fakes(1, 1101700000)
    try:
        with Processes(tmp_path) as procs:
            _, [channel] = make_channels(resources, [fake], slug="faults-down")
            app = AppServer(procs, app_env(resources, servers, redis_db_index, test_dsn, tmp_path)).start()
            chats = [f"20130000{n:04d}@c.us" for n in range(OUTAGE_CUSTOMERS)]
            fake.down_until = time.time() + OUTAGE_S
            bad_states: list = []

            def outbox() -> list[dict]:
                return rows(resources.db, "SELECT id, status, attempts, last_error FROM outbox WHERE channel_id = %s "
                                          "ORDER BY id", (channel["id"],))

            for n, chat in enumerate(chats):
                assert post(app, customer_body(fake.instance_id, chat, f"DOWN{n:012d}")).status_code == 200
                time.sleep(OUTAGE_SPACING_S)
            # During the outage: every reply is queued (`retrying`), none failed or lost.
            all_queued = None
            while time.time() < fake.down_until - 0.5:
                now = outbox()
                bad_states += [r for r in now if r["status"] not in ("retrying", "pending")]
                if len(now) == OUTAGE_CUSTOMERS and all(r["status"] == "retrying" for r in now):
                    all_queued = now
                time.sleep(0.1)
            assert not bad_states, bad_states
            assert all_queued is not None, f"not every reply was queued during the outage: {outbox()}"
            refused = [c for c in fake.calls("sendMessage") if c.get("refused") == "down"]
            assert refused and not accepted(fake)

            back = time.monotonic()
            wait_for(lambda: len(accepted(fake)) >= OUTAGE_CUSTOMERS, timeout=60, step=0.2)
            drained_s = time.monotonic() - back
            time.sleep(2)
            order = [c["body"]["chatId"] for c in accepted(fake)]
            figures = {"refused_during_outage": len(refused), "answered_after_outage_s": round(drained_s, 1),
                       "max_attempts": max(r["attempts"] for r in outbox())}
            print(f"\n[faults] provider down: {figures}")
            record_property("provider_down", json.dumps(figures))
            assert order == chats, f"answered in another order or not once each: {order}"
            assert [r["status"] for r in outbox()] == ["sent"] * OUTAGE_CUSTOMERS
    finally:
        stop_fakes([fake])


# ------------------------------------------------------------------ 4. pacing over a run

PACED_CUSTOMERS = 30


def test_pacing_holds_over_a_run_of_thirty_customers_on_one_number(
        resources, servers, redis_db_index, test_dsn, tmp_path, record_property):
    [fake] = start_fakes(1, 1101800000)
    try:
        with Processes(tmp_path) as procs:
            make_channels(resources, [fake], slug="faults-pace")
            app = AppServer(procs, app_env(resources, servers, redis_db_index, test_dsn, tmp_path)).start()
            chats = [f"20140000{n:04d}@c.us" for n in range(PACED_CUSTOMERS)]
            for n, chat in enumerate(chats):
                assert post(app, customer_body(fake.instance_id, chat, f"PACE{n:012d}")).status_code == 200
            wait_for(lambda: len(accepted(fake)) >= PACED_CUSTOMERS, timeout=PACED_CUSTOMERS * INTERVAL_S + 30,
                     step=0.2)
            time.sleep(1.5)
            sends = fake.calls("sendMessage")     # every request that reached the number, taken or not
            at = [c["at"] for c in sends]
            gaps = [b - a for a, b in zip(at, at[1:])]
            figures = {"sends": len(sends), "min_gap_ms": round(min(gaps) * 1000, 1),
                       "median_gap_ms": round(statistics.median(gaps) * 1000, 1),
                       "span_s": round(at[-1] - at[0], 1)}
            print(f"\n[faults] pacing: {figures}")
            record_property("pacing", json.dumps(figures))
            assert sorted(c["body"]["chatId"] for c in accepted(fake)) == sorted(chats)   # once each
            close = [round(g * 1000, 1) for g in gaps if g < INTERVAL_S - CLOCK_NOISE_S]
            assert close == [], f"sends closer than {INTERVAL_S * 1000:.0f} ms on one number: {close}"
    finally:
        stop_fakes([fake])


# ------------------------------------------------------------------ 5. takeover under a backlog

BACKLOG = 3000
TAKEOVER_TRIALS = int(os.environ.get("FAULTS_TAKEOVER_TRIALS") or 5)   # each ~25-40 s: the backlog is applied first


def store_backlog(db, channels: ChannelDirectory, bodies: list[dict], batch: int = 500) -> None:
    """Store webhook bodies through the receive path's own steps (read, authenticate, one group insert per batch)."""
    for start in range(0, len(bodies), batch):
        pending = []
        for body in bodies[start:start + batch]:
            request = WebhookRequest("POST", {"authorization": f"Bearer {WEBHOOK_TOKEN}"}, {}, json.dumps(body).encode())
            receiver, envelopes = read_request("green-api", request)
            found = {e.instance_key: channels.find("green-api", e.instance_key) for e in envelopes}
            pending += authorize(receiver, request, envelopes, found)
        receipts = store_events(db, pending)
        assert all(r.outcome is Receipt.STORED for r in receipts)


def wipe_organization(test_dsn: str, org_id: int) -> None:
    """Remove one trial's rows quickly (child tables first, so no cascade scans row by row), and every event."""
    conn = connect(test_dsn, statement_timeout_ms=0)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in ("followups", "escalations", "messages", "outbox", "conversations", "contacts"):
                cur.execute(f"DELETE FROM {table} WHERE organization_id = %s", (org_id,))
            cur.execute("DELETE FROM organizations WHERE id = %s", (org_id,))
            cur.execute("DELETE FROM webhook_events")
            cur.execute("VACUUM ANALYZE webhook_events, messages, conversations, contacts, outbox")  # trials alike
    finally:
        conn.close()


def takeover_trial(resources, fake, trial: int, *, procs: Processes, env: dict, test_dsn: str) -> dict:
    org_id, [channel] = make_channels(resources, [fake], slug=f"faults-takeover-{trial}")
    chat_x = f"20150000{trial:04d}@c.us"
    worker = None
    try:
        # X's customer message first, then 3,000 events of other chats: nothing applied yet.
        assert post_green_api(resources.db, customer_body(fake.instance_id, chat_x, f"X{trial:03d}CUSTOMER")
                              ).outcome is Receipt.STORED
        directory = ChannelDirectory(resources.db, secret_key=resources.settings.secret_key, ttl_s=300)
        store_backlog(resources.db, directory, [customer_body(fake.instance_id, f"2016{trial:02d}{n:06d}@c.us",
                                                              f"B{trial:03d}{n:08d}", "hello") for n in range(BACKLOG)])
        report = run_once(resources.db, snapshot=SHIPPED, batch=1)       # only X's message is applied
        assert report.done == 1
        x = conversation(resources.db, channel["id"], chat_x)
        assert x is not None and x["mode"] == "AI" and x["reply_due_at"] is not None   # X's reply is due
        assert one(resources.db, "SELECT count(*) AS n FROM webhook_events WHERE status = 'pending'")["n"] == BACKLOG

        # The agent answers from the phone; right after Green API's 200 a worker (events, replies, sends) starts.
        receipt = post_green_api(resources.db, phone_reply_body(fake.instance_id, chat_x, f"X{trial:03d}PHONE"))
        acked = time.monotonic()
        acked_wall = time.time()
        assert receipt.outcome is Receipt.STORED
        worker = procs.start([sys.executable, "-m", "execution.worker"], env=env, name=f"worker-{trial}")

        due_seen = {x["reply_due_at"]}           # the responder deferring X moves its due time each try
        first_done = None
        while True:
            now = conversation(resources.db, channel["id"], chat_x)
            if now["mode"] == "HUMAN":
                latency = time.monotonic() - acked
                break
            if now["reply_due_at"] is not None:
                due_seen.add(now["reply_due_at"])
            if first_done is None and one(resources.db, "SELECT 1 AS x FROM webhook_events WHERE status = 'done' "
                                                        "AND id > %s LIMIT 1", (receipt.event_id - BACKLOG,)):
                first_done = time.monotonic() - acked
            assert worker.alive(), worker.log_tail()
            assert time.monotonic() - acked < 120, "the takeover did not take effect within 120 s"
            time.sleep(0.02)
        applied_by_then = one(resources.db, "SELECT count(*) AS n FROM webhook_events WHERE status = 'done'")["n"]
        # The responder finds X's schedule dropped (or answers HUMAN); a moment more for anything late.
        wait_for(lambda: conversation(resources.db, channel["id"], chat_x)["reply_due_at"] is None, timeout=10)
        time.sleep(1.0)
        to_x = [c for c in fake.calls("sendMessage") if c["body"].get("chatId") == chat_x]
        drafts = rows(resources.db, "SELECT delivery_status FROM messages WHERE conversation_id = %s "
                                    "AND author = 'ai'", (x["id"],))
        return {"latency_s": latency, "worker_first_event_s": first_done, "events_applied_by_then": applied_by_then,
                "x_reply_deferred": len(due_seen) - 1,
                "ai_sends_to_x_after_ack": sum(1 for c in to_x if c["at"] >= acked_wall), "ai_sends_to_x": len(to_x),
                "x_outbox": [r["status"] for r in outbox_of(resources.db, channel["id"], chat_x)],
                "x_ai_messages": [d["delivery_status"] for d in drafts]}
    finally:
        if worker is not None:
            procs.stop(worker)
        wipe_organization(test_dsn, org_id)


def test_a_phone_takeover_acked_behind_a_backlog_stops_the_assistant_at_once(
        resources, servers, redis_db_index, test_dsn, tmp_path, record_property):
    [fake] = start_fakes(1, 1101900000)
    trials = []
    try:
        with Processes(tmp_path) as procs:
            env = app_env(resources, servers, redis_db_index, test_dsn, tmp_path)
            for n in range(TAKEOVER_TRIALS):
                trials.append(takeover_trial(resources, fake, n, procs=procs, env=env, test_dsn=test_dsn))
                print(f"\n[faults] takeover trial {n}: {trials[-1]}")
    finally:
        stop_fakes([fake])
    latencies = [t["latency_s"] for t in trials]
    figures = {"trials": len(trials), "backlog": BACKLOG,
               "takeover_to_human_s": {"min": round(min(latencies), 2), "median": round(statistics.median(latencies), 2),
                                       "max": round(max(latencies), 2)},
               "x_reply_deferred": [t["x_reply_deferred"] for t in trials],
               "breaches": sum(t["ai_sends_to_x"] for t in trials)}
    print(f"\n[faults] takeover under a backlog: {figures}")
    record_property("takeover_latency", json.dumps(figures))
    for t in trials:
        assert t["x_reply_deferred"] >= 1, f"the responder never tried X's due reply: the fence was not exercised {t}"
        assert t["ai_sends_to_x_after_ack"] == 0 and t["ai_sends_to_x"] == 0, t
        assert t["x_outbox"] == [], t
        assert "pending" not in t["x_ai_messages"] and "sent" not in t["x_ai_messages"], t
