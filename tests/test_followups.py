"""Follow-ups after a shortlist: sent when the customer went quiet, at a decent hour, never after a
takeover (not revived by a hand-back), an answer or a request to stop; the next one scheduled."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from execution.answer_conversation import answer_conversation
from execution.identify_conversation import identify_conversation
from execution.job_handlers import _after_quiet_hours, job_handlers
from execution.lib import message_store
from execution.lib.job_runner import run_due_jobs
from execution.lib.listing_import import import_listings
from execution.lib.providers import ProviderRegistry
from execution.set_mode_ai import set_mode_ai
from execution.set_mode_human import set_mode_human
from tests.conftest import SNAPSHOT, StaticDirectives

DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data" / "listings_nile_homes.csv"
_ids = itertools.count(1)
# No quiet hours in the way of these tests, wherever the clock stands (the quiet-hours test sets its own).
AWAKE = SNAPSHOT.with_values("follow_up_rules", quiet_hours=["03:00", "03:01"])


@pytest.fixture
def chat(resources, green_channel):
    with resources.db.transaction() as c:
        agent = {"id": green_channel["agent_id"], "organization_id": green_channel["organization_id"],
                 "email": "agent@acme.example"}
        assert not import_listings(c, path=DEMO, agent=agent, reassign=True).errors
        return identify_conversation(c, channel=green_channel, chat_id="201200000001@c.us")


def say(resources, conversation, text, snapshot=AWAKE):
    with resources.db.transaction() as c:
        message_store.insert_message(c, organization_id=conversation["organization_id"],
                                     conversation_id=conversation["id"], direction="inbound", author="customer",
                                     message_type="text", body=text, provider_message_id=f"FU{next(_ids):06d}")
        with c.cursor() as cur:
            cur.execute("UPDATE conversations SET last_inbound_at = now() WHERE id = %s", (conversation["id"],))
    return answer_conversation(resources.db, resources.redis, ProviderRegistry(secret_key=resources.settings.secret_key),
                               conversation_id=conversation["id"], snapshot=snapshot)


def followups(resources, conversation):
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT f.id, f.kind, f.status, f.cancel_reason, f.due_at FROM followups f "
                    "WHERE conversation_id = %s AND owner = 'assistant' ORDER BY id", (conversation["id"],))
        return cur.fetchall()


def run_due(resources, snapshot=AWAKE):
    """The clock moves on: every pending follow-up job is due now; a fresh set of handlers runs them."""
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE jobs SET run_at = now() - interval '1 second' WHERE status = 'pending'")
    handlers = job_handlers(resources.db, resources.redis, ProviderRegistry(secret_key=resources.settings.secret_key),
                            StaticDirectives(snapshot))
    return run_due_jobs(resources.db, handlers=handlers)


def nudges(fake):
    return [c["body"]["message"] for c in fake.calls("sendMessage") if c["body"]["message"].startswith("Did any")]


def test_a_quiet_customer_gets_the_follow_ups_in_turn_and_no_more(resources, chat, fake_green_api):
    assert say(resources, chat, "any 3 bedroom apartments for sale in Maadi?").kind in ("results", "closest")
    [first] = followups(resources, chat)
    assert first["kind"] == "nudge_1" and first["status"] == "pending"
    from execution.lib import job_store
    with resources.db.connection() as c:       # `jobs --pending` says which conversation a job is for
        [job] = [j for j in job_store.listing(c, status="pending") if j["kind"] == "followup"]
    assert (job["conversation_id"], job["chat_id"]) == (chat["id"], chat["chat_id"])
    assert timedelta(hours=1.9) < first["due_at"] - datetime.now(timezone.utc) < timedelta(hours=2.1)
    assert run_due(resources).done == 1 and len(nudges(fake_green_api)) == 1
    rows = followups(resources, chat)
    assert [(r["kind"], r["status"]) for r in rows] == [("nudge_1", "sent"), ("nudge_2", "pending")]
    assert timedelta(hours=23.9) < rows[1]["due_at"] - datetime.now(timezone.utc) < timedelta(hours=24.1)
    assert run_due(resources).done == 1 and len(nudges(fake_green_api)) == 2
    assert run_due(resources).claimed == 0                       # two delays in the directive: two follow-ups


def test_an_answer_ends_them(resources, chat, fake_green_api):
    say(resources, chat, "any 3 bedroom apartments for sale in Maadi?")
    with resources.db.transaction() as c:                         # the customer writes (not yet answered)
        message_store.insert_message(c, organization_id=chat["organization_id"], conversation_id=chat["id"],
                                     direction="inbound", author="customer", message_type="text", body="hmm",
                                     provider_message_id="FU-ANSWER")
    run_due(resources)
    assert nudges(fake_green_api) == []
    assert [(r["status"], r["cancel_reason"]) for r in followups(resources, chat)] == [
        ("cancelled", "the customer wrote since")]


def test_a_takeover_cancels_them_and_a_hand_back_does_not_revive_them(resources, chat, fake_green_api):
    say(resources, chat, "any 3 bedroom apartments for sale in Maadi?")
    with resources.db.connection() as c:
        set_mode_human(c, snapshot=SNAPSHOT, conversation_id=chat["id"], actor="inbox", reason="test")
    assert followups(resources, chat)[0]["status"] == "cancelled"   # in the takeover's own transaction
    with resources.db.connection() as c:
        set_mode_ai(c, snapshot=SNAPSHOT, conversation_id=chat["id"], actor="inbox", reason="test")
    report = run_due(resources)
    assert (report.claimed, report.done) == (1, 0) and nudges(fake_green_api) == []
    assert followups(resources, chat)[0]["status"] == "cancelled"


@pytest.mark.parametrize("stop", ["no more messages please, thanks", "مش مهتم شكرا", "matb3atlish tany shokran"])
def test_a_customer_who_asked_to_stop_never_gets_one(resources, chat, fake_green_api, stop):
    say(resources, chat, stop)
    say(resources, chat, "any 3 bedroom apartments for sale in Maadi?")
    run_due(resources)
    assert nudges(fake_green_api) == []
    assert followups(resources, chat)[-1]["cancel_reason"] == "the customer asked to stop"


def test_quiet_hours_move_a_follow_up_to_the_morning(resources, chat, fake_green_api):
    now = datetime.now(ZoneInfo("Africa/Cairo"))
    quiet = SNAPSHOT.with_values("follow_up_rules", quiet_hours=[(now - timedelta(hours=1)).strftime("%H:%M"),
                                                                   (now + timedelta(hours=1)).strftime("%H:%M")])
    say(resources, chat, "any 3 bedroom apartments for sale in Maadi?", snapshot=quiet)
    report = run_due(resources, snapshot=quiet)
    assert report.skipped == 1 and nudges(fake_green_api) == []
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT run_at FROM jobs WHERE kind = 'followup' AND status = 'pending'")
        [moved] = cur.fetchall()
    assert timedelta(minutes=55) < moved["run_at"] - datetime.now(timezone.utc) < timedelta(minutes=65)


def test_quiet_hours_wrap_past_midnight():
    rules = {"quiet_hours": ["21:00", "09:00"]}
    cairo = ZoneInfo("Africa/Cairo")
    at = lambda h, m=0: datetime(2026, 11, 24, h, m, tzinfo=cairo)     # noqa: E731
    assert _after_quiet_hours(rules, "Africa/Cairo", at(12)) is None
    assert _after_quiet_hours(rules, "Africa/Cairo", at(22)) == datetime(2026, 11, 25, 9, 0, tzinfo=cairo)
    assert _after_quiet_hours(rules, "Africa/Cairo", at(7, 30)) == datetime(2026, 11, 24, 9, 0, tzinfo=cairo)
    assert _after_quiet_hours(rules, "Africa/Cairo", at(9)) is None
