"""Viewings: slots from the rules, booking under a race, moving, cancelling, reminders that survive restarts.

Real PostgreSQL (the exclusion constraint), the fake Green API server for every send.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from execution.book_viewing import book_viewing
from execution.change_viewing import cancel_viewing, confirm_viewing, reschedule_viewing
from execution.identify_conversation import identify_conversation
from execution.job_handlers import job_handlers
from execution.lib.job_runner import run_due_jobs
from execution.lib import availability, viewing_store
from execution.lib.providers import ProviderRegistry
from execution.list_viewing_slots import list_viewing_slots
from tests.conftest import SNAPSHOT, StaticDirectives

CAIRO = ZoneInfo("Africa/Cairo")
RULES = SNAPSHOT["viewing_rules"]


def _rules(**own) -> availability.Rules:
    return availability.rules_for(RULES, {"timezone": "Africa/Cairo", "working_hours": None, "viewing_rules": own})


# --- the slot grid --------------------------------------------------------------------------------

def test_slots_follow_hours_notice_buffer_blocks_and_days_off():
    rules = _rules()
    tuesday_9am = datetime(2026, 11, 24, 9, 0, tzinfo=CAIRO)
    slots = availability.free_slots(rules, now=tuesday_9am, limit=200)
    first = slots[0]
    # 3 h notice from 09:00 is 12:00, on the 45-minute grid from the 10:00 opening: 12:15.
    assert first == datetime(2026, 11, 24, 12, 15, tzinfo=CAIRO)
    assert all(s.astimezone(CAIRO).strftime("%a") != "Fri" for s in slots)       # Friday is a day off
    assert all(s.astimezone(CAIRO) + timedelta(minutes=45) <= s.astimezone(CAIRO).replace(hour=19, minute=0)
               for s in slots)
    thursday = [s for s in slots if s.astimezone(CAIRO).strftime("%a") == "Thu"]
    assert max(thursday).astimezone(CAIRO).time().isoformat() == "16:00:00"      # closes at 17:00 on Thursday
    # A booking keeps its 15-minute buffer clear: 12:15 booked → 13:00 is not free, 13:45 is.
    booked = [(first, first + timedelta(minutes=60))]
    after = availability.free_slots(rules, now=tuesday_9am, booked=booked, limit=3)
    assert [s.astimezone(CAIRO).strftime("%H:%M") for s in after] == ["13:45", "14:30", "15:15"]
    # Blocked afternoon, and a listing shown only on Saturday mornings.
    blocked = [(tuesday_9am.replace(hour=13), tuesday_9am.replace(hour=23))]
    assert [s.astimezone(CAIRO).strftime("%a %H:%M") for s in
            availability.free_slots(rules, now=tuesday_9am, blocked=blocked, limit=2)] == ["Tue 12:15", "Wed 10:00"]
    saturday_only = availability.free_slots(rules, now=tuesday_9am, listing_windows={"sat": ["11:00", "13:00"]})
    assert {s.astimezone(CAIRO).strftime("%a") for s in saturday_only} == {"Sat"}
    assert min(saturday_only).astimezone(CAIRO).strftime("%H:%M") == "11:00"


def test_a_time_off_the_grid_or_hours_is_refused_with_the_reason():
    rules = _rules(slot_minutes=30)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=CAIRO)
    assert availability.is_bookable(rules, datetime(2026, 11, 25, 18, 0, tzinfo=CAIRO), now=now) is None
    assert "every 30 minutes" in availability.is_bookable(rules, datetime(2026, 11, 25, 18, 10, tzinfo=CAIRO), now=now)
    assert availability.is_bookable(rules, datetime(2026, 11, 27, 12, 0, tzinfo=CAIRO), now=now) == \
        "outside viewing hours"                                                     # a Friday
    assert "notice" in availability.is_bookable(rules, datetime(2026, 11, 24, 10, 0, tzinfo=CAIRO), now=now)


# --- booking against the database -----------------------------------------------------------------

@pytest.fixture
def agency(resources, green_channel):
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute(
            """
            INSERT INTO properties (organization_id, agent_id, reference, project_name, property_type, listing_type,
                                    city, district, bedrooms, price, currency, status, latitude, longitude)
            VALUES (%(o)s, %(a)s, 'NH-0001', 'Palm Hills', 'apartment', 'sale', 'Cairo', 'New Cairo', 3, 7250000,
                    'EGP', 'available', 30.02, 31.47),
                   (%(o)s, %(a)s, 'NH-0002', 'Zed', 'villa', 'sale', 'Giza', 'Sheikh Zayed', 4, 21000000,
                    'EGP', 'sold', NULL, NULL)
            """,
            {"o": green_channel["organization_id"], "a": green_channel["agent_id"]},
        )
    return green_channel


def _conversation(resources, channel, n: int) -> dict:
    with resources.db.transaction() as c:
        return identify_conversation(c, channel=channel, chat_id=f"2010{n:08d}@c.us")


def _next_slot(resources, channel) -> datetime:
    with resources.db.connection() as c:
        listing = {"id": _listing_id(c, "NH-0001")}
        return list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=channel["agent_id"], listing=listing, limit=1)[0]


def _listing_id(conn, reference: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM properties WHERE reference = %s", (reference,))
        return cur.fetchone()["id"]


def _book(resources, channel, conversation, at, *, key=None, **kw):
    return book_viewing(resources.db, resources.redis, ProviderRegistry(secret_key=resources.settings.secret_key),
                        snapshot=SNAPSHOT, conversation_id=conversation["id"], reference=kw.pop("reference", "NH-0001"),
                        starts_at=at, booked_by=kw.pop("booked_by", "assistant"), language=kw.pop("language", "en"),
                        idempotency_key=key or f"test:{conversation['id']}:{at:%Y%m%d%H%M}", **kw)


def test_a_booking_confirms_with_the_address_and_pin_and_alerts_the_agent(resources, agency, fake_green_api):
    convo = _conversation(resources, agency, 1)
    at = _next_slot(resources, agency)
    report = _book(resources, agency, convo, at, language="ar")
    assert report.outcome == "booked" and report.sends == ("sent", "sent", "sent")
    texts = [r["body"] for r in fake_green_api.calls("sendMessage")]
    to_customer = next(t for t in texts if t["chatId"] == "201000000001@c.us")
    assert "NH-0001" in to_customer["message"] and "Palm Hills" in to_customer["message"]
    assert "الساعة" in to_customer["message"]                       # the date in the customer's language
    assert fake_green_api.calls("sendLocation")[0]["body"]["latitude"] == 30.02
    alert = next(t for t in texts if t["chatId"] == "15550000000@c.us")
    assert alert["message"].startswith("Viewing booked: NH-0001") and "201000000001" in alert["message"]
    # The same request again books nothing new and sends nothing again.
    again = _book(resources, agency, convo, at, language="ar")
    assert again.outcome == "already_booked" and again.viewing_id == report.viewing_id
    assert len(fake_green_api.calls("sendMessage")) == 2
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT kind, key, run_at FROM jobs ORDER BY run_at")
        jobs = cur.fetchall()
    assert [j["key"] for j in jobs][-1] == f"feedback:{report.viewing_id}"
    assert all(j["run_at"] < at or j["kind"] == "viewing_feedback" for j in jobs)


def test_fifty_customers_racing_for_one_slot_get_one_booking(resources, agency, fake_green_api):
    at = _next_slot(resources, agency)
    conversations = [_conversation(resources, agency, n) for n in range(100, 150)]
    results, barrier = [None] * 50, threading.Barrier(50)

    def race(i):
        barrier.wait()
        results[i] = _book(resources, agency, conversations[i], at)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    outcomes = [r.outcome for r in results]
    assert outcomes.count("booked") == 1 and outcomes.count("slot_taken") == 49
    # Each loser is offered times still free, none of them the taken one.
    assert all(r.alternatives and at not in r.alternatives for r in results if r.outcome == "slot_taken")
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM viewings WHERE status = 'booked'")
        assert cur.fetchone()["n"] == 1


def test_sold_listings_and_other_agents_listings_cannot_be_booked(resources, agency):
    from execution.lib.errors import BadRequest, NotFound

    convo = _conversation(resources, agency, 2)
    at = _next_slot(resources, agency)
    with pytest.raises(BadRequest, match="sold"):
        _book(resources, agency, convo, at, reference="NH-0002")
    with pytest.raises(NotFound):
        _book(resources, agency, convo, at, reference="OTHER-1")


def test_move_then_cancel_tells_the_customer_and_keeps_the_jobs_right(resources, agency, fake_green_api):
    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    convo = _conversation(resources, agency, 3)
    slots = None
    with resources.db.connection() as c:
        slots = list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                                   listing={"id": _listing_id(c, "NH-0001")}, limit=30)
    first = _book(resources, agency, convo, slots[0], booked_by="cli")
    moved = reschedule_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                               viewing_id=first.viewing_id, starts_at=slots[-1], actor="cli")
    assert moved.outcome == "moved" and moved.viewing_id != first.viewing_id
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT key, status FROM jobs ORDER BY id")
        jobs = {r["key"]: r["status"] for r in cur.fetchall()}
    assert all(s == "cancelled" for k, s in jobs.items() if f":{first.viewing_id}:" in k or
               k == f"feedback:{first.viewing_id}")
    assert jobs[f"feedback:{moved.viewing_id}"] == "pending"
    # The freed time can be taken by someone else at once.
    other = _book(resources, agency, _conversation(resources, agency, 4), slots[0])
    assert other.outcome == "booked"
    # Moving onto a taken time is refused and changes nothing.
    refused = reschedule_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT,
                                 agent_id=agency["agent_id"], viewing_id=moved.viewing_id, starts_at=slots[0],
                                 actor="cli")
    assert refused.outcome == "slot_taken"
    with resources.db.connection() as c:
        assert viewing_store.get_viewing(c, agent_id=agency["agent_id"], viewing_id=moved.viewing_id)["status"] == "booked"
    assert confirm_viewing(resources.db, agent_id=agency["agent_id"], viewing_id=moved.viewing_id,
                           actor="cli").outcome == "confirmed"
    cancelled = cancel_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT,
                               agent_id=agency["agent_id"], viewing_id=moved.viewing_id, actor="cli", reason="x")
    assert cancelled.outcome == "cancelled"
    texts = [r["body"]["message"] for r in fake_green_api.calls("sendMessage")
             if r["body"]["chatId"] == "201000000003@c.us"]
    assert texts[0].startswith("Booked:") and texts[1].startswith("Done: your viewing of NH-0001 is now on")
    assert "is cancelled" in texts[2]
    # Another agent cannot touch it.
    from execution.lib.errors import NotFound
    with pytest.raises(NotFound):
        cancel_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT, agent_id=agency["agent_id"] + 999,
                       viewing_id=first.viewing_id, actor="cli")


def test_reminders_survive_a_restart_run_once_and_skip_cancelled_viewings(resources, agency, fake_green_api):
    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    convo, other = _conversation(resources, agency, 5), _conversation(resources, agency, 6)
    with resources.db.connection() as c:
        slots = list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                                   listing={"id": _listing_id(c, "NH-0001")}, start=datetime.now(timezone.utc)
                                   + timedelta(hours=30), limit=3)
    kept = _book(resources, agency, convo, slots[0])
    dropped = _book(resources, agency, other, slots[2])       # the next is inside the first one's buffer
    assert (kept.outcome, dropped.outcome) == ("booked", "booked")
    cancel_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                   viewing_id=dropped.viewing_id, actor="cli")
    # Nothing of the booking lives in memory: a new process (new handlers) finds the jobs in the database.
    # The clock moves on: every job of these viewings is now due.
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE jobs SET status = 'pending' WHERE status = 'cancelled' RETURNING id")  # even if revived
        revived = len(cur.fetchall())
        cur.execute("UPDATE jobs SET run_at = now() - interval '1 second' WHERE status = 'pending'")
    assert revived >= 3
    handlers = job_handlers(resources.db, resources.redis, providers, StaticDirectives())
    report = run_due_jobs(resources.db, handlers=handlers)
    assert report.claimed >= 6 and report.failed == 0
    sent = [r["body"]["message"] for r in fake_green_api.calls("sendMessage")]
    reminders = [t for t in sent if t.startswith("Reminder:")]
    assert len(reminders) == 2                       # 24 h and 2 h, for the kept viewing only
    assert sum(t.startswith("How was the viewing") for t in sent) == 1
    # A job claimed by a process that died before marking it done runs again and sends nothing twice
    # (the viewing is still ahead in this replay: its status back to booked).
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE jobs SET status = 'running', lease_until = now() - interval '1 second' "
                    "WHERE key = %s", (f"reminder:{kept.viewing_id}:24h",))
        cur.execute("UPDATE viewings SET status = 'booked' WHERE id = %s", (kept.viewing_id,))
    again = run_due_jobs(resources.db, handlers=handlers)
    assert (again.claimed, again.done, again.outcomes[0][2]) == (1, 1, "duplicate")
    assert len([r for r in fake_green_api.calls("sendMessage") if r["body"]["message"].startswith("Reminder:")]) == 2


# --- the inbox and the calendar feed ----------------------------------------------------------------

def test_the_calendar_feed_lists_viewings_without_phone_numbers_and_can_be_revoked(resources, agency):
    import dataclasses

    from fastapi.testclient import TestClient

    from execution.lib.resources import Resources
    from execution.lib.security import hash_password
    from main import create_app

    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE agents SET password_hash = %s WHERE id = %s", (hash_password("pw-for-the-feed-test"),
                                                                         agency["agent_id"]))
    convo = _conversation(resources, agency, 7)
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE contacts SET display_name = 'Layla, buyer; VIP' "
                    "WHERE id = (SELECT contact_id FROM conversations WHERE id = %s)", (convo["id"],))
    at = _next_slot(resources, agency)
    booked = _book(resources, agency, convo, at)
    res = Resources(dataclasses.replace(resources.settings, simulator=False), resources.db, resources.redis, "test",
                    "test")
    with TestClient(create_app(res, run_worker=False, directives=StaticDirectives())) as client:
        assert client.post("/api/auth/login", json={"email": "agent@acme.example",
                                                    "password": "pw-for-the-feed-test"}).status_code == 200
        client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
        listed = client.get(f"/api/conversations/{convo['id']}/viewings").json()["viewings"]
        assert [(v["id"], v["status"]) for v in listed] == [(booked.viewing_id, "booked")]
        url = client.post("/api/calendar/link").json()["feed_url"]
        path = url.split("testserver", 1)[1]
        feed = client.get(path)
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
        text = feed.text
        assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
        assert f"UID:viewing-{booked.viewing_id}@" in text
        assert "DTSTART:" + at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") in text
        assert "Layla\\, buyer\\; VIP" in text and "GEO:30.020000;31.470000" in text
        assert "201000000007" not in text.replace("\r\n ", "")          # no customer phone number
        assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
        # The agent moves it from the inbox: the feed shows the new time, the old one cancelled.
        later = _next_slot(resources, agency) + timedelta(days=1)
        with resources.db.connection() as c:
            later = list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                                       listing={"id": _listing_id(c, "NH-0001")}, start=later, limit=1)[0]
        moved = client.post(f"/api/viewings/{booked.viewing_id}/move",
                            json={"starts_at": later.astimezone(CAIRO).strftime("%Y-%m-%dT%H:%M")}).json()
        assert moved["outcome"] == "moved"
        text = client.get(path).text
        assert text.count("BEGIN:VEVENT") == 2 and "STATUS:CANCELLED" in text
        # A new link ends the old one.
        assert client.post("/api/calendar/link").status_code == 200
        assert client.get(path).status_code == 404


def test_viewing_settings_change_the_slots_offered(resources, agency, capsys):
    import json

    from execution import viewing_settings

    def run(*argv):
        code = viewing_settings.main(["--agent", "agent@acme.example", *argv], resources=resources)
        return code, capsys.readouterr()

    code, out = run("--slot-minutes", "30", "--buffer-minutes", "0", "--notice-hours", "1")
    assert code == 0 and json.loads(out.out)["viewing_rules"] == {"slot_minutes": 30, "buffer_minutes": 0,
                                                                  "min_notice_hours": 1}
    assert run("--slot-minutes", "5")[0] == 1                                      # out of range, with the reason
    code, out = run("--listing", "NH-0001", "--windows", '{"sat": ["11:00", "12:00"]}')
    assert code == 0 and json.loads(out.out)["listing"]["viewing_windows"] == {"sat": ["11:00", "12:00"]}
    assert run("--listing", "NH-0001", "--windows", '{"caturday": ["11:00", "12:00"]}')[0] == 1
    with resources.db.connection() as c:
        slots = list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                                   listing={"id": _listing_id(c, "NH-0001")}, limit=10)
    local = [s.astimezone(CAIRO) for s in slots]
    assert {s.strftime("%a") for s in local} == {"Sat"} and {s.strftime("%H:%M") for s in local} <= {"11:00", "11:30"}
    # A blocked Saturday offers nothing that day.
    first = local[0]
    code, _ = run("--block", first.strftime("%Y-%m-%dT00:00"), (first + timedelta(days=1)).strftime("%Y-%m-%dT00:00"),
                  "--reason", "closing")
    assert code == 0
    with resources.db.connection() as c:
        after = list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                                   listing={"id": _listing_id(c, "NH-0001")}, limit=10)
    assert all(s.astimezone(CAIRO).date() != first.date() for s in after) and after


def test_a_worker_killed_after_the_booking_loses_no_reminder(resources, agency, fake_green_api, servers,
                                                             redis_db_index, test_dsn, tmp_path):
    """Real processes: `python -m execution.worker` is SIGKILLed after the booking; the reminder, due
    later, is sent once by the next worker started (nothing of the job lived in the killed one)."""
    import signal
    import sys

    from tests.processes import Processes, redis_url, service_env
    from tests.waiting import wait_for

    convo = _conversation(resources, agency, 8)
    booked = _book(resources, agency, convo, _next_slot(resources, agency))
    env = service_env(database_url=test_dsn, redis_url=redis_url(servers, redis_db_index),
                      secret_key=resources.settings.secret_key, data_dir=tmp_path / "data", run_worker=False)

    def reminders() -> list[str]:
        return [r["body"]["message"] for r in fake_green_api.calls("sendMessage")
                if r["body"]["message"].startswith("Reminder:")]

    with Processes(tmp_path) as procs:
        first = procs.start([sys.executable, "-m", "execution.worker"], env=env, name="worker")
        wait_for(lambda: _loops(resources) >= 1, timeout=60)
        procs._signal_group(first, signal.SIGKILL)
        first.popen.wait(10)
        with resources.db.transaction() as c, c.cursor() as cur:      # the reminder's time comes
            cur.execute("UPDATE jobs SET run_at = now() WHERE key = %s", (f"reminder:{booked.viewing_id}:2h",))
        second = procs.start([sys.executable, "-m", "execution.worker"], env=env, name="worker")
        wait_for(lambda: len(reminders()) == 1, timeout=60)
        procs.stop(second)
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT status, attempts FROM jobs WHERE key = %s", (f"reminder:{booked.viewing_id}:2h",))
        assert dict(cur.fetchone()) == {"status": "done", "attempts": 1}
    assert len(reminders()) == 1


def _loops(resources) -> int:
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM loop_heartbeats WHERE loop = 'job-runner'")
        return cur.fetchone()["n"]


def test_cancelling_twice_is_once_and_touches_only_that_viewings_jobs(resources, agency, fake_green_api):
    from execution.lib import job_store

    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    convo = _conversation(resources, agency, 9)
    booked = _book(resources, agency, convo, _next_slot(resources, agency))
    vid = booked.viewing_id
    with resources.db.transaction() as c:         # look-alike jobs: viewing 10×id here, and this id in another org
        other = _other_org(c)
        job_store.enqueue(c, organization_id=agency["organization_id"], kind="viewing_feedback",
                          key=f"feedback:{vid}0", run_at=datetime.now(timezone.utc) + timedelta(days=1),
                          payload={"viewing_id": vid * 10, "agent_id": agency["agent_id"]})
        job_store.enqueue(c, organization_id=other, kind="viewing_feedback", key=f"other:feedback:{vid}",
                          run_at=datetime.now(timezone.utc) + timedelta(days=1),
                          payload={"viewing_id": vid, "agent_id": agency["agent_id"]})
    first = cancel_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                           viewing_id=vid, actor="cli")
    again = cancel_viewing(resources.db, resources.redis, providers, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                           viewing_id=vid, actor="cli")
    assert (first.outcome, again.outcome) == ("cancelled", "already_cancelled")
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT key, status FROM jobs ORDER BY key")
        jobs = {r["key"]: r["status"] for r in cur.fetchall()}
    assert jobs[f"feedback:{vid}"] == "cancelled"
    assert jobs[f"feedback:{vid}0"] == "pending" and jobs[f"other:feedback:{vid}"] == "pending"
    sent = [r for r in fake_green_api.calls("sendMessage") if "is cancelled" in r["body"]["message"]]
    assert len(sent) == 1


def test_a_reminder_that_comes_too_late_is_skipped(resources, agency, fake_green_api):
    providers = ProviderRegistry(secret_key=resources.settings.secret_key)
    booked = _book(resources, agency, _conversation(resources, agency, 10), _next_slot(resources, agency))
    with resources.db.transaction() as c, c.cursor() as cur:     # the worker was down until the viewing began
        cur.execute("UPDATE viewings SET starts_at = now() - interval '5 minutes', ends_at = now() + interval '40 minutes',"
                    " blocked_until = now() + interval '55 minutes' WHERE id = %s", (booked.viewing_id,))
        cur.execute("UPDATE jobs SET run_at = now(), payload = jsonb_set(payload, '{starts_at}', "
                    "to_jsonb((SELECT starts_at FROM viewings WHERE id = %s)::text)) WHERE kind = 'viewing_reminder'",
                    (booked.viewing_id,))
    report = run_due_jobs(resources.db, handlers=job_handlers(resources.db, resources.redis, providers,
                                                               StaticDirectives()))
    assert report.skipped >= 1 and report.done == 0
    assert not [r for r in fake_green_api.calls("sendMessage") if r["body"]["message"].startswith("Reminder:")]


def _other_org(conn) -> int:
    from execution.lib import tenant_store
    return tenant_store.upsert_organization(conn, slug="other-homes", name="Other Homes")["id"]


def test_a_time_past_the_horizon_is_refused_with_the_reason_not_an_error(resources, agency):
    convo = _conversation(resources, agency, 11)
    far = datetime.now(CAIRO).replace(hour=12, minute=15, second=0, microsecond=0) + timedelta(days=200)
    report = _book(resources, agency, convo, far)
    assert report.outcome == "not_bookable" and "days ahead" in report.reason and report.alternatives == []
    with resources.db.connection() as c:
        assert list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=agency["agent_id"],
                                  listing={"id": _listing_id(c, "NH-0001")}, start=far) == []
