"""A customer books, moves and cancels a viewing in their own words, in English, Arabic and Arabizi,
through the offline responder and through a model (the fake Messages API), and answers the feedback
question. Every reply goes through answer_conversation to the fake Green API."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from execution.answer_conversation import answer_conversation
from execution.identify_conversation import identify_conversation
from execution.lib import message_store
from execution.lib.providers import ProviderRegistry
from tests.conftest import SNAPSHOT

CAIRO = ZoneInfo("Africa/Cairo")
_ids = itertools.count(1)


@pytest.fixture
def shop(resources, green_channel):
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute(
            """
            INSERT INTO properties (organization_id, agent_id, reference, project_name, property_type, listing_type,
                                    city, district, district_ar, bedrooms, price, currency, status, latitude, longitude)
            VALUES (%s, %s, 'NH-0001', 'Palm Hills', 'apartment', 'sale', 'Cairo', 'New Cairo', 'التجمع', 3, 7250000,
                    'EGP', 'available', 30.02, 31.47)
            """,
            (green_channel["organization_id"], green_channel["agent_id"]),
        )
    return green_channel


class Chat:
    def __init__(self, resources, channel, fake, number: str, model=None):
        self.resources, self.fake, self.model = resources, fake, model
        self.chat = f"{number}@c.us"
        with resources.db.transaction() as c:
            self.conversation = identify_conversation(c, channel=channel, chat_id=self.chat)
        self.providers = ProviderRegistry(secret_key=resources.settings.secret_key)

    def say(self, text: str) -> str:
        """The customer writes; the assistant answers; the text it sent (and nothing else new) comes back."""
        before = len(self.sent())
        with self.resources.db.transaction() as c:
            message_store.insert_message(c, organization_id=self.conversation["organization_id"],
                                         conversation_id=self.conversation["id"], direction="inbound",
                                         author="customer", message_type="text", body=text,
                                         provider_message_id=f"VIEW{next(_ids):06d}")
            with c.cursor() as cur:
                cur.execute("UPDATE conversations SET last_inbound_at = now() WHERE id = %s",
                            (self.conversation["id"],))
        answer_conversation(self.resources.db, self.resources.redis, self.providers,
                            conversation_id=self.conversation["id"], snapshot=SNAPSHOT, model=self.model)
        new = self.sent()[before:]
        assert len(new) == 1, new
        return new[0]

    def sent(self) -> list[str]:
        return [c["body"]["message"] for c in self.fake.calls("sendMessage") if c["body"]["chatId"] == self.chat]

    def viewings(self) -> list[dict]:
        with self.resources.db.connection() as c, c.cursor() as cur:
            cur.execute("SELECT id, status, starts_at, feedback FROM viewings WHERE conversation_id = %s ORDER BY id",
                        (self.conversation["id"],))
            return cur.fetchall()


def _next(weekday: int) -> datetime:
    """The next such weekday (Mon=0) at least two days ahead, in Cairo."""
    day = datetime.now(CAIRO).date() + timedelta(days=2)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), CAIRO)


def test_english_book_by_number_move_then_cancel(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000001")
    chat.say("tell me about NH-0001")
    offer = chat.say("can I see it on Sunday evening?")
    sunday = _next(6)
    assert "NH-0001" in offer and "1. Sunday" in offer and "\n2. Sunday" in offer, offer
    confirmation = chat.say("2")
    assert confirmation.startswith("Booked: a viewing of NH-0001 on Sunday") and "Palm Hills" in confirmation
    [v] = chat.viewings()
    assert v["status"] == "booked" and v["starts_at"].astimezone(CAIRO).date() == sunday.date()
    assert v["starts_at"].astimezone(CAIRO).hour >= 17                     # "evening"
    assert fake_green_api.calls("sendLocation")                            # the pin
    alerts = [c["body"]["message"] for c in fake_green_api.calls("sendMessage")
              if c["body"]["chatId"] == "15550000000@c.us"]
    assert alerts and alerts[0].startswith("Viewing booked: NH-0001")
    # Move it: the customer names a day, gets times, picks one.
    offer = chat.say("can we change the time to monday?")
    assert "1. Monday" in offer, offer
    moved = chat.say("1")
    assert moved.startswith("Done: your viewing of NH-0001 is now on Monday")
    assert [x["status"] for x in chat.viewings()] == ["moved", "booked"]
    cancelled = chat.say("sorry, please cancel the viewing")
    assert "is cancelled" in cancelled
    assert [x["status"] for x in chat.viewings()] == ["moved", "cancelled"]


def test_arabic_request_with_a_day_and_part_then_a_choice(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000002")
    offer = chat.say("عايز اعاين NH-0001 يوم الحد بالليل")
    assert "NH-0001" in offer and "١. الأحد" in offer, offer
    confirmation = chat.say("٢")
    assert confirmation.startswith("تم الحجز: معاينة NH-0001 يوم الأحد") and "الساعة" in confirmation
    assert [x["status"] for x in chat.viewings()] == ["booked"]
    cancelled = chat.say("معلش الغي المعاينة")
    assert cancelled.startswith("اتلغت معاينة NH-0001")


def test_arabizi_exact_time_books_at_once_and_a_taken_time_offers_others(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000003")
    tuesday = _next(1)
    first = tuesday.replace(hour=10, minute=45)
    offer = chat.say(f"momken a3ayen NH-0001 yom {tuesday.day}/{tuesday.month} el sa3a 10:45 el sob7")
    assert offer.startswith("Tamam, el mo3aina bta3et NH-0001"), offer
    assert chat.viewings()[0]["starts_at"] == first
    other = Chat(resources, shop, fake_green_api, "201100000004")
    taken = other.say(f"I'd like to visit NH-0001 on {tuesday.day}/{tuesday.month} at 10:45am")
    assert taken.startswith("That time was just taken.") and "1. " in taken, taken
    assert other.viewings() == []


def test_the_answer_to_the_feedback_question_is_stored_for_the_agent(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000005")
    chat.say("tell me about NH-0001")
    chat.say("can I view it on Sunday?")
    chat.say("1")
    [v] = chat.viewings()
    with resources.db.transaction() as c, c.cursor() as cur:      # the viewing is over; the question went out
        cur.execute("UPDATE viewings SET feedback_asked_at = now(), status = 'done' WHERE id = %s", (v["id"],))
    thanks = chat.say("Loved the garden but the kitchen is small")
    assert thanks.startswith("Thank you, I've passed that on to Agent")
    assert chat.viewings()[0]["feedback"] == "Loved the garden but the kitchen is small"
    # The next message is an ordinary one again.
    assert "Thank you" not in chat.say("do you have anything bigger?")


def test_a_request_without_a_listing_in_focus_asks_which(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000006")
    assert chat.say("I want to book a viewing tomorrow").startswith("Which listing would you like to visit?")
    assert chat.viewings() == []


# --- through a model's tools (the fake Messages API, the real SDK) -----------------------------------

def test_a_model_books_and_cancels_through_its_tools(resources, shop, fake_green_api):
    import json as _json

    from execution.lib.llm import ClaudeBackend
    from tests.fakes import anthropic_server as A

    def results(body):
        return [_json.loads(b["content"]) for m in body["messages"] if m["role"] == "user"
                and isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_result"]

    def respond(body):
        said = [m for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], str)]
        got = results(body)
        if "rather not go" in said[-1]["content"]:
            return A.tool_use("cancel_viewing", {}) if not got else A.text("No problem, it's cancelled.")
        if not got:
            return A.tool_use("list_viewing_slots", {"reference": "NH-0001"})
        if "slots" in got[-1]:
            return A.tool_use("book_viewing", {"reference": "NH-0001", "start": got[-1]["slots"][0]["start"]})
        if got[-1].get("booked"):
            return A.text(f"I've booked your viewing of NH-0001 for {slot_text[0]}. See you there!")
        return A.text("Sorry, that did not work.")

    server = A.FakeAnthropic(api_key="k").start()
    try:
        server.responder = respond
        model = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=server.url, timeout_s=5, max_retries=0)
        chat = Chat(resources, shop, fake_green_api, "201100000009", model=model)
        from execution.lib import formatting
        from execution.list_viewing_slots import list_viewing_slots
        with resources.db.connection() as c, c.cursor() as cur:
            cur.execute("SELECT id FROM properties WHERE reference = 'NH-0001'")
            first = list_viewing_slots(c, snapshot=SNAPSHOT, agent_id=shop["agent_id"], listing=cur.fetchone(),
                                       limit=1)[0]
        slot_text = [formatting.when_text(first, lang="en", timezone="Africa/Cairo")]
        reply = chat.say("Is the earliest time you have possible for NH-0001?")
        assert reply == f"I've booked your viewing of NH-0001 for {slot_text[0]}. See you there!"
        [v] = chat.viewings()
        assert v["status"] == "booked" and v["starts_at"] == first
        with resources.db.connection() as c, c.cursor() as cur:
            cur.execute("SELECT generation FROM messages WHERE conversation_id = %s AND author = 'ai' "
                        "ORDER BY id DESC LIMIT 1", (chat.conversation["id"],))
            generation = cur.fetchone()["generation"]
        assert generation["backend"] == "claude" and generation["guard"] == "passed"
        assert generation["tool_calls"] == ["list_viewing_slots", "book_viewing"]
        alerts = [c["body"]["message"] for c in fake_green_api.calls("sendMessage")
                  if c["body"]["chatId"] == "15550000000@c.us"]
        assert any(a.startswith("Viewing booked: NH-0001") for a in alerts)
        assert chat.say("plans changed, I'd rather not go") == "No problem, it's cancelled."
        assert [x["status"] for x in chat.viewings()] == ["cancelled"]
    finally:
        server.stop()


# --- what a first review found ------------------------------------------------------------------------

def test_an_arabizi_request_is_not_taken_for_a_complaint(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000011")
    offer = chat.say("momken a3ayen NH-0001 bokra ba3d el dohr")
    assert "NH-0001" in offer and "1. " in offer, offer
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT mode FROM conversations WHERE id = %s", (chat.conversation["id"],))
        assert cur.fetchone()["mode"] == "AI"


def test_asking_for_another_time_books_nothing_and_not_cancelling_cancels_nothing(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000012")
    chat.say("عايز اعاين NH-0001 يوم الحد بالليل")
    chat.say("مفيش ميعاد تاني بدري شوية؟")
    assert chat.viewings() == []
    chat.say("عايز اعاين NH-0001 يوم الحد بالليل")
    chat.say("١")
    assert [v["status"] for v in chat.viewings()] == ["booked"]
    chat.say("thanks! I won't cancel, see you then")
    assert [v["status"] for v in chat.viewings()] == ["booked"]


def test_a_time_off_the_grid_offers_that_days_times(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000013")
    monday = _next(0)
    offer = chat.say(f"can I see NH-0001 on Monday {monday.day}/{monday.month} at 11am?")
    assert "1. Monday" in offer and "taken" not in offer, offer
    booked = chat.say(f"can I see NH-0001 on {monday.day}/{monday.month} at 10:45 am?")
    assert booked.startswith("Booked: a viewing of NH-0001 on Monday")


def test_a_question_after_the_feedback_question_is_answered_not_stored(resources, shop, fake_green_api):
    chat = Chat(resources, shop, fake_green_api, "201100000014")
    chat.say("tell me about NH-0001")
    chat.say("can I view it on Sunday?")
    chat.say("1")
    [v] = chat.viewings()
    with resources.db.transaction() as c, c.cursor() as cur:
        cur.execute("UPDATE viewings SET feedback_asked_at = now(), status = 'done' WHERE id = %s", (v["id"],))
    assert not chat.say("anything cheaper in Maadi?").startswith("Thank you")
    assert chat.viewings()[0]["feedback"] is None
    # The question was answered by something else first: a later message is not taken as feedback either.
    assert not chat.say("I liked the kitchen").startswith("Thank you")


@pytest.mark.parametrize("request_text, pick, moved_to, cancel, booked_prefix", [
    ("عايز اعاين NH-0001 يوم الحد بالليل", "٢", "ممكن نخليها يوم الاتنين؟", "معلش الغي المعاينة", "تم الحجز"),
    ("momken a3ayen NH-0001 bokra ba3d el dohr", "1", "3ayez a8ayar el ma3ad le yom el etnein", "el8i el mo3aina law sama7t",
     "Tamam, el mo3aina"),
])
def test_with_a_model_configured_the_viewing_flow_books_moves_and_cancels(resources, shop, fake_green_api, request_text,
                                                                         pick, moved_to, cancel, booked_prefix):
    from execution.lib.llm import ClaudeBackend
    from tests.fakes import anthropic_server as A

    server = A.FakeAnthropic(api_key="k").start()
    try:
        server.responder = lambda body: A.text("(the model would have answered here)")
        model = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=server.url, timeout_s=5, max_retries=0)
        chat = Chat(resources, shop, fake_green_api, f"2011000{abs(hash(request_text)) % 100000:05d}", model=model)
        assert "NH-0001" in chat.say(request_text)
        assert chat.say(pick).startswith(booked_prefix)
        offer = chat.say(moved_to)
        assert "1" in offer or "١" in offer, offer
        chat.say("1" if pick == "1" else "١")
        assert [v["status"] for v in chat.viewings()] == ["moved", "booked"]
        chat.say(cancel)
        assert [v["status"] for v in chat.viewings()] == ["moved", "cancelled"]
        assert server.requests == []        # every turn was the viewing flow's: the model was never asked
    finally:
        server.stop()


def test_sunday_at_4_offers_sundays_times_nearest_4_pm(resources, shop, fake_green_api):
    """"at 4" without am/pm used to find nothing at exactly 4 and offer the earliest times of other days."""
    chat = Chat(resources, shop, fake_green_api, "201100000021")
    offer = chat.say("can I see NH-0001 on Sunday at 4?")
    lines = [ln for ln in offer.splitlines() if ln[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3 and all(" Sunday " in f" {ln} " for ln in lines), offer
    assert any("4:00 pm" in ln for ln in lines), offer
    arabic = Chat(resources, shop, fake_green_api, "201100000022").say("عايز اعاين NH-0001 يوم الأحد الساعة ٤")
    assert arabic.count("الأحد") == 3 and "٤:٠٠ م" in arabic, arabic


def test_a_part_of_the_day_with_no_free_time_says_so_and_offers_that_days_nearest(resources, shop, fake_green_api):
    with resources.db.transaction() as c, c.cursor() as cur:   # Sunday's hours end before the evening
        cur.execute("UPDATE agents SET working_hours = %s WHERE id = %s",
                    ('{"sun": ["10:00", "17:00"], "mon": ["10:00", "17:00"]}', shop["agent_id"]))
    chat = Chat(resources, shop, fake_green_api, "201100000023")
    offer = chat.say("can I see NH-0001 on Sunday evening?")
    assert offer.startswith("NH-0001 has no free viewing time then."), offer
    lines = [ln for ln in offer.splitlines() if ln[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3 and all("Sunday" in ln for ln in lines), offer
    arabic = Chat(resources, shop, fake_green_api, "201100000024").say("عايز اعاين NH-0001 يوم الحد بالليل")
    assert arabic.startswith("مفيش ميعاد معاينة فاضي لـ NH-0001") and arabic.count("الأحد") == 3, arabic
