"""When an agent can show a listing: the slot grid from working hours, minus notice, blocks and bookings.

Pure functions over values the caller loaded; times are aware datetimes, computed in the agent's
time zone (a day's opening hours are wall-clock times there, daylight saving included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from execution.lib import directive_schemas

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Rules:
    """The rules in force for one agent (the directive's defaults under the agent's own)."""
    slot_minutes: int
    buffer_minutes: int
    min_notice_hours: int
    horizon_days: int
    working_hours: Mapping[str, list]        # weekday key -> ["HH:MM", "HH:MM"]
    timezone: str

    @property
    def slot(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    @property
    def buffer(self) -> timedelta:
        return timedelta(minutes=self.buffer_minutes)


def rules_for(directive, agent: Mapping) -> Rules:
    """The viewing_rules directive's values, with the agent's own working hours and overrides on top."""
    own = agent.get("viewing_rules") or {}
    hours = agent.get("working_hours") or directive["working_hours"]
    return Rules(
        slot_minutes=int(own.get("slot_minutes", directive["slot_minutes"])),
        buffer_minutes=int(own.get("buffer_minutes", directive["buffer_minutes"])),
        min_notice_hours=int(own.get("min_notice_hours", directive["min_notice_hours"])),
        horizon_days=int(directive["horizon_days"]),
        working_hours=dict(hours),
        timezone=agent.get("timezone") or "Africa/Cairo",
    )


def _clock(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def _day_windows(rules: Rules, day: date, listing_windows: Mapping | None) -> list[tuple[time, time]]:
    key = WEEKDAY_KEYS[day.weekday()]
    hours = rules.working_hours.get(key)
    if not hours:
        return []
    opens, closes = _clock(hours[0]), _clock(hours[1])
    if listing_windows is None:
        return [(opens, closes)]
    window = listing_windows.get(key)
    if not window:
        return []
    lo, hi = max(opens, _clock(window[0])), min(closes, _clock(window[1]))
    return [(lo, hi)] if lo < hi else []


def _overlaps(start: datetime, end: datetime, busy: Iterable[tuple[datetime, datetime]]) -> bool:
    return any(start < b_end and b_start < end for b_start, b_end in busy)


def free_slots(rules: Rules, *, now: datetime, start: datetime | None = None, end: datetime | None = None,
               booked: Iterable[tuple[datetime, datetime]] = (), blocked: Iterable[tuple[datetime, datetime]] = (),
               listing_windows: Mapping | None = None, limit: int = 50) -> list[datetime]:
    """Slot starts in [start, end) (default: now .. the horizon) that a booking could take, earliest first.

    `booked`: other viewings as (starts_at, blocked_until); a slot keeps its buffer clear of them, as
    the database's exclusion constraint does. `blocked`: the agent's blocked periods.
    """
    tz = ZoneInfo(rules.timezone)
    now = now.astimezone(tz)
    earliest = now + timedelta(hours=rules.min_notice_hours)
    horizon = now + timedelta(days=rules.horizon_days)
    lo = max(earliest, start.astimezone(tz) if start else earliest)
    hi = min(horizon, end.astimezone(tz) if end else horizon)
    booked, blocked = list(booked), list(blocked)
    out: list[datetime] = []
    day = lo.date()
    while day <= hi.date() and len(out) < limit:
        for opens, closes in _day_windows(rules, day, listing_windows):
            slot = datetime.combine(day, opens, tz)
            last = datetime.combine(day, closes, tz) - rules.slot
            while slot <= last and len(out) < limit:
                finish = slot + rules.slot
                if lo <= slot < hi and not _overlaps(slot, finish + rules.buffer, booked) \
                        and not _overlaps(slot, finish, blocked):
                    out.append(slot)
                slot = slot + rules.slot
        day += timedelta(days=1)
    return out


def is_bookable(rules: Rules, slot: datetime, *, now: datetime, listing_windows: Mapping | None = None,
                blocked: Iterable[tuple[datetime, datetime]] = ()) -> str | None:
    """None when `slot` is on the grid, in hours, with notice and free of blocks; else why not."""
    tz = ZoneInfo(rules.timezone)
    local = slot.astimezone(tz)
    if local < now.astimezone(tz) + timedelta(hours=rules.min_notice_hours):
        return f"needs {rules.min_notice_hours} h notice"
    if local > now.astimezone(tz) + timedelta(days=rules.horizon_days):
        return f"more than {rules.horizon_days} days ahead"
    for opens, closes in _day_windows(rules, local.date(), listing_windows):
        first = datetime.combine(local.date(), opens, tz)
        if first <= local and local + rules.slot <= datetime.combine(local.date(), closes, tz):
            if (local - first) % rules.slot:
                return f"viewings start every {rules.slot_minutes} minutes from {opens:%H:%M}"
            if _overlaps(local, local + rules.slot, blocked):
                return "the agent is not available then"
            return None
    return "outside viewing hours"


def parse_week(text: str) -> dict:
    """An agent's own week from JSON ('{"sun": ["09:00", "18:00"]}'), checked as the viewing directive's week
    is ("18:00" to "09:00" left no free time); ValueError with the reason. Days left out have no viewings."""
    try:
        hours = json.loads(text)
    except ValueError:
        raise ValueError('JSON such as {"sun": ["09:00", "18:00"]}') from None
    if not isinstance(hours, dict) or not hours or not set(hours) <= set(directive_schemas.WEEKDAYS):
        raise ValueError('days mon..sun, each ["HH:MM", "HH:MM"]; the days left out have no viewings')
    for day, value in hours.items():
        problems = directive_schemas.hours(value, day)
        if problems:
            raise ValueError(f"{day}: {problems[0][1]}")
    return hours
