"""read_when: viewing times in English, Egyptian Arabic and Arabizi, read against a labelled corpus.

tests/data/when_cases.yaml holds the customer messages with the reading each must give; every case
must pass (no tolerance: when one fails, fix the reader or, if the label is wrong, the label with the
reason in `note`). Then: numbers that are not times, and a fuzz test that no input makes it raise.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.lib.when import DAY_PARTS, KINDS, When, read_when

CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "when_cases.yaml").read_text(encoding="utf-8"))
DEFAULTS = CORPUS["defaults"]
CASES = CORPUS["cases"]
CAIRO = ZoneInfo("Africa/Cairo")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=CAIRO)   # a Tuesday


def _now(case: dict) -> datetime:
    tz = ZoneInfo(case.get("tz", DEFAULTS["tz"]))
    return datetime.fromisoformat(case.get("now", DEFAULTS["now"])).replace(tzinfo=tz)


def _local(value: str | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=tz)


# --- the corpus ----------------------------------------------------------------------------------------

def test_corpus_is_large_balanced_and_well_formed():
    assert len(CASES) >= 150
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    per_language = Counter(c["lang"] for c in CASES)
    assert set(per_language) == {"en", "ar", "arabizi"}
    assert min(per_language.values()) >= 45, per_language
    for case in CASES:
        assert case["kind"] in KINDS, case["id"]
        assert isinstance(case["ambiguous"], bool), case["id"]
        assert ("start" in case) == (case["kind"] != "none"), case["id"]
        assert "end" in case or case["kind"] in ("exact", "none"), case["id"]
    zones = Counter(c.get("tz", DEFAULTS["tz"]) for c in CASES)
    assert {"Africa/Cairo", "Europe/London", "Africa/Lagos"} <= set(zones)
    assert any(_now(c).hour >= 22 for c in CASES), "late-night cases"
    assert any(_now(c).weekday() == 5 for c in CASES), "cases said on a Saturday"
    for kind in KINDS:
        assert any(c["kind"] == kind for c in CASES), f"no {kind} case"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus_case(case):
    now = _now(case)
    tz = now.tzinfo
    start = _local(case.get("start"), tz)
    end = _local(case.get("end", case.get("start")), tz)
    got = read_when(case["text"], now=now)
    assert (got.kind, got.start, got.end, got.ambiguous) == (case["kind"], start, end, case["ambiguous"]), (
        f"{case['text']!r}: read {got.kind} {got.start} - {got.end} ambiguous={got.ambiguous}"
        f" from {got.matched!r}")
    if got.kind != "none":
        assert got.start.tzinfo is tz and got.end.tzinfo is tz
        assert got.matched


# --- numbers that are not times -----------------------------------------------------------------------

NOT_TIMES = [
    "3 bedrooms", "6 million", "٣ غرف", "budget 8M", "2-3 bedrooms", "between 5 and 7 million", "150 m2",
    "120 sqm 2 baths", "5th floor", "floor 5", "ground floor", "unit 7", "block 12 building 3", "phase 2",
    "the 2nd one looks better", "3 people", "family of 5", "10 minutes from the metro", "15 min to the mall",
    "8 years installments", "10% down payment", "20k a month", "7.5M", "6,500,000 EGP", "EGP 4500000",
    "+20 100 123 4567", "01012345678", "07700 900123", "NH-0012", "delivery 2027", "Q4 2026", "24/7 security",
    "3 or 4 rooms", "4 br", "2 bathrooms", "ok", "thanks", "hello", "anything in 6th of October city?",
    "ميزانيتي ٦ مليون", "شقة ٣ غرف وحمامين", "الدور الخامس", "الدور ٣", "مساحة ١٥٠ متر", "تقسيط على ٨ سنين",
    "مقدم ١٠٪", "٧ ونص مليون", "من ٥ ل ٧ مليون", "عمارة ١٢", "المرحلة ٢", "اوضتين وصالة", "ساكن في ٦ أكتوبر",
    "مدينة ١٥ مايو", "الحد الأدنى ٥ مليون", "رقمي ٠١٠١٢٣٤٥٦٧٨", "٥ دقايق من المترو", "عندي ٤ عيال",
    "3ayez sha2a 3 owad", "fi 7odod 6 mlyon", "7 w nos million", "el dor el 5", "150 metr", "2 7amam",
    "sha2a fel tagamo3 el 5ames", "3 sneen ta2seet", "10 da2aye2 men el metro", "rakam 0100 123 4567",
    "masa2 el kheir", "sabah el 5eir ya basha", "good evening", "good night", "el etnein 7elwin",
    "عايز اشوف الاتنين", "is there anyone from 6 october", "Sun and sea view", "wed like to see more options",
]


@pytest.mark.parametrize("text", NOT_TIMES)
def test_numbers_and_words_that_are_not_times(text):
    got = read_when(text, now=NOW)
    assert got == When("none", None, None, False, ""), f"{text!r} read as {got.kind} from {got.matched!r}"


def test_a_count_beside_a_time_is_still_read_as_the_time():
    got = read_when("2 bedrooms tomorrow at 6", now=NOW)
    assert (got.kind, got.start) == ("exact", datetime(2026, 11, 25, 18, 0, tzinfo=CAIRO))
    got = read_when("شقة ٣ غرف بـ ٧ مليون ممكن اشوفها الخميس الساعة ٥ العصر", now=NOW)
    assert (got.kind, got.start, got.ambiguous) == ("exact", datetime(2026, 11, 26, 17, 0, tzinfo=CAIRO), False)


# --- the rules a caller relies on ---------------------------------------------------------------------

def test_day_part_windows_are_the_published_ones():
    for words, part in [("tomorrow morning", "morning"), ("bokra el dohr", "noon"), ("بكره بعد الضهر", "afternoon"),
                        ("tomorrow evening", "evening"), ("bokra bel leil", "evening")]:
        got = read_when(words, now=NOW)
        lo, hi = DAY_PARTS[part]
        assert (got.kind, got.start.hour, got.end.hour) == ("part", lo, hi), words


def test_a_bare_hour_is_pm_from_1_to_8_and_am_from_9_to_11():
    for hour, expected in [(1, 13), (6, 18), (8, 20), (9, 9), (11, 11), (12, 12)]:
        got = read_when(f"tomorrow at {hour}", now=NOW)
        assert got.start.hour == expected
        assert got.ambiguous is (hour != 12)
    assert read_when("tomorrow at 6 in the morning", now=NOW).start.hour == 6
    assert read_when("tomorrow at 6 in the morning", now=NOW).ambiguous is False


def test_next_week_starts_sunday_in_arabic_and_monday_in_english():
    assert read_when("الأسبوع الجاي", now=NOW).start.date().isoformat() == "2026-11-29"
    assert read_when("el esbo3 el gay", now=NOW).start.date().isoformat() == "2026-11-29"
    assert read_when("next week", now=NOW).start.date().isoformat() == "2026-11-30"


def test_the_weekend_follows_the_agents_country():
    cairo = read_when("this weekend", now=NOW)
    london = read_when("this weekend", now=NOW.astimezone(ZoneInfo("Europe/London")))
    assert [cairo.start.weekday(), (cairo.end - timedelta(days=1)).weekday()] == [4, 5]
    assert [london.start.weekday(), (london.end - timedelta(days=1)).weekday()] == [5, 6]


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        read_when("tomorrow", now=datetime(2026, 11, 24, 10, 0))


def test_the_reader_logs_nothing(caplog):
    with caplog.at_level(logging.DEBUG):
        read_when("بكرة الساعة ٦ المسا 01012345678", now=NOW)
    assert caplog.records == []


# --- fuzz: any text, any moment, never an exception ---------------------------------------------------

FRAGMENTS = [
    "tomorrow", "today", "tonight", "next", "this", "at", "@", "between", "and", "to", "after", "before", "the",
    "on", "sunday", "sat", "friday", "week", "weekend", "month", "any day", "morning", "evening", "noon",
    "half", "quarter", "past", "pm", "am", "o'clock", "ish", "in", "hours", "days", "3rd", "25th", "dec",
    "october", "may", "feb", "29", "31", "0", "00", "07", "12", "13", "23", "24", "99", "6:30", "6.30",
    "25/12", "31/2", "29/02/2027", "12-13", "5-7", "/", ":", "-", ".", ",", "?", "!", "+", "%", "٪",
    "بكره", "بكرة", "النهارده", "بعد", "بكرا", "الساعه", "الساعة", "٦", "۶", "١٢", "ونص", "الا ربع", "المسا",
    "الصبح", "الضهر", "بالليل", "الحد", "الاتنين", "الجاي", "اللي جاي", "يوم", "الأسبوع", "الويك اند", "أي يوم",
    "ديسمبر", "اكتوبر", "من", "ل", "لحد", "قبل", "مش", "مليون", "غرف", "الدور", "شهر", "ـ", "ً", "\u200f",
    "bokra", "bukra", "enaharda", "ba3d", "el", "sa3a", "w nos", "ela rob3", "el sob7", "bel leil", "el 7ad",
    "elly gay", "el esbo3", "ay yom", "5amsa", "7edashar", "yom", "mesh", "3la", "men", "le", "owad", "mlyon",
    "İ", "ß", "𝟔", "６", "\u0000", "\n", "  ",
]
ZONES = [ZoneInfo("Africa/Cairo"), ZoneInfo("Europe/London"), ZoneInfo("Africa/Lagos"), ZoneInfo("Pacific/Apia"),
         timezone(timedelta(hours=2)), timezone.utc]
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31),
                       timezones=st.sampled_from(ZONES), allow_imaginary=False)
messages = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.integers(0, 3000).map(str), st.text(max_size=3)),
             max_size=12).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
)


def _check(got: When, now: datetime) -> None:
    assert got.kind in KINDS
    if got.kind == "none":
        assert (got.start, got.end, got.ambiguous, got.matched) == (None, None, False, "")
        return
    assert got.start.tzinfo is now.tzinfo and got.end.tzinfo is now.tzinfo
    assert got.start <= got.end
    if got.kind == "exact":
        assert got.start == got.end
    assert got.matched


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=messages, now=moments)
def test_any_text_at_any_moment_reads_without_raising(text, now):
    _check(read_when(text, now=now), now)


@settings(max_examples=300, deadline=None, database=None)
@given(case=st.sampled_from(CASES), noise=st.text(max_size=20), now=moments)
def test_corpus_messages_with_noise_at_any_moment_read_without_raising(case, noise, now):
    _check(read_when(noise + " " + case["text"] + " " + noise, now=now), now)
