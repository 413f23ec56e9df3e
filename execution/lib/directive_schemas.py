"""The schema of each directive id: required keys, their types and ranges; unknown keys are refused."""

from __future__ import annotations

import re
import string

from execution.lib.directive_checks import (
    Check, boolean, directive, integer, keyed, list_of, mapping, number, one_of, per_language, regex, text,
)

MESSAGE_TYPES = ("text", "choice", "image", "video", "document", "audio", "location", "contact")
ESCALATION_CATEGORIES = ("negotiation", "human_request", "legal", "complaint", "out_of_scope")
CRITERIA_FIELDS = ("area", "budget", "bedrooms", "listing_type")
RELAXABLE = ("amenities", "size", "bedrooms", "budget", "type")
PERSONA_STYLES = ("professional", "friendly", "casual", "premium")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Each viewing message and the placeholders it may use.
VIEWING_MESSAGES = {
    "confirmation": ("reference", "when", "address", "agent_name"),
    "moved": ("reference", "when"),
    "cancelled": ("reference", "when"),
    "offer_slots": ("reference", "slots"),
    "slot_taken": ("reference", "slots"),
    "none_then": ("reference", "slots"),
    "no_slots": ("reference", "agent_name"),
    "which_listing": (),
    "reminder": ("reference", "when", "address"),
    "feedback_question": ("reference", "agent_name"),
    "feedback_thanks": ("agent_name",),
}

# Each persona template and the placeholders it may use.
TEMPLATES = {
    "greeting": ("agent_name", "agency"),
    "ask_area": (), "ask_budget": (), "ask_bedrooms": (), "ask_listing_type": (),
    "results_intro": ("count",), "results_intro_one": (),
    "closest_results_intro": ("count",), "closest_results_intro_one": (),
    "more_results_intro": ("count",), "more_results_intro_one": (),
    "cheaper_intro": ("count",), "cheaper_intro_one": (),
    "bigger_intro": ("count",), "bigger_intro_one": (),
    "no_more": (), "no_cheaper": ("reference",), "no_bigger": ("reference",),
    "results_outro": (),
    "no_results": ("agent_name",),
    "listing_intro": ("reference",),
    "payment_plan": ("reference", "payment_plan"),
    "no_payment_plan": ("reference", "agent_name"),
    "delivery": ("reference", "delivery"),
    "amenities": ("reference", "amenities"),
    "no_amenities": ("reference", "agent_name"),
    "unknown": ("agent_name",),
    "which_listing": (),
    "location": ("reference", "location"),
    "photos": ("reference",),
    "no_photos": ("reference", "agent_name"),
    "status_available": ("reference",), "status_reserved": ("reference",), "status_sold": ("reference",),
    "price": ("reference", "price"),
    "size": ("reference", "size"),
    "greeting_again": (),
    "closing_thanks": (), "closing_ok": (), "closing_bye": ("agent_name",),
}


def template(*allowed: str) -> Check:
    """Text whose {placeholders} are all among `allowed` (a typo would otherwise fail at reply time)."""
    def check(v, where):
        problems = text(v, where)
        if problems:
            return problems
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(v) if name is not None}
        except ValueError as exc:
            return [(where, f"is not a valid template: {exc}")]
        unknown = sorted(n for n in names if n not in allowed)
        return [(where, f"unknown placeholder(s) {unknown}; allowed: {list(allowed) or 'none'}")] if unknown else []
    return check


def hours(v, where):
    """["HH:MM", "HH:MM"]: an opening and a later closing time."""
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(t, str) for t in v)):
        return [(where, 'must be ["HH:MM", "HH:MM"]')]
    if not all(re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) for t in v):
        return [(where, "times are HH:MM, 00:00 to 23:59")]
    return [] if v[0] < v[1] else [(where, "the closing time must come after the opening time")]


def hours_pair(v, where):
    """["HH:MM", "HH:MM"], which may wrap past midnight (quiet hours from 21:00 to 09:00)."""
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(t, str) for t in v)):
        return [(where, 'must be ["HH:MM", "HH:MM"]')]
    if not all(re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) for t in v) or v[0] == v[1]:
        return [(where, "two different times, HH:MM")]
    return []


def working_week(v, where):
    """Per weekday (mon … sun) its hours; a day not listed is a day off."""
    if not isinstance(v, dict) or not v:
        return [(where, 'must list at least one day, e.g. sun: ["10:00", "18:00"]')]
    out = [(f"{where}.{k}", f"unknown day; use {', '.join(WEEKDAYS)}") for k in v if k not in WEEKDAYS]
    return out + [p for k, x in v.items() if k in WEEKDAYS for p in hours(x, f"{where}.{k}")]


def optional_text(v, where):
    return [] if v is None else text(v, where)


def normalized_regex(v, where):
    """A regex over normalised text: letters that normalisation removes could never match."""
    problems = regex(v, where)
    if problems:
        return problems
    folded = sorted({ch for ch in v if ch in "أإآٱىةـ" or "ً" <= ch <= "ْ" or ch == "ٰ"})
    return [(where, f"contains {''.join(folded)!r}, which normalisation removes; write ا ي ه and no diacritics")] \
        if folded else []


SCHEMAS: dict[str, Check] = {
    "incoming_message_router": directive(
        answer_message_types=list_of(one_of(*MESSAGE_TYPES), min_items=1),
        answer_groups=boolean,
        max_customer_text_chars=integer(100, 20_000),
    ),
    "ai_human_toggle_logic": directive(
        phone_reply_takes_over=boolean,
        inbox_reply_takes_over=boolean,
        takeover_cancels_followups=boolean,
        auto_resume_after_hours=integer(1, 720, nullable=True),
        brief_max_chars=integer(0, 4000),
    ),
    "message_sending_rules": directive(
        burst_window_s=number(0, 6),
        burst_cap_s=number(0, 30),
        max_reply_chars=integer(200, 4096),
        max_listings_per_reply=integer(1, 10),
        arabic_digits=boolean,
        send_location_pin=boolean,
        send_interval_ms=keyed(integer(0, 60_000)),
        default_send_interval_ms=integer(0, 60_000),
        send_claim_s=integer(30, 900),
        retry_horizon_s=integer(60, 86_400),
        retry_backoff_max_s=integer(1, 600),
        unknown_after_s=integer(60, 86_400),
    ),
    "property_retrieval": directive(
        max_results=integer(1, 10),
        budget_tolerance_pct=integer(0, 50),
        ask_for_missing=list_of(one_of(*CRITERIA_FIELDS)),
        ask_at_most=integer(1, 4),
        relax_when_empty=list_of(one_of(*RELAXABLE)),
        include_unavailable=boolean,
    ),
    "persona_enforcement": directive(
        default_language=one_of("en", "ar", "arabizi"),
        templates=mapping({name: per_language(template(*allowed), gendered=True)
                           for name, allowed in TEMPLATES.items()}),
    ),
    "escalation_triggers": directive(
        rules=list_of(mapping({
            "id": text,
            "category": one_of(*ESCALATION_CATEGORIES),
            "patterns": mapping({lang: list_of(normalized_regex) for lang in ("en", "ar", "arabizi")}),
            "exclusions": list_of(normalized_regex),
            "mentions": list_of(normalized_regex),
            "reply": per_language(template("agent_name"), gendered=True),
        }, optional=("exclusions", "mentions")), min_items=1),
        agent_alert=keyed(template("rule", "category", "customer", "excerpt"), keys=("en", "ar")),
        # Example messages by meaning (execution/lib/meaning.py): per category and language, and look-alikes.
        examples=mapping({c: per_language(list_of(text, min_items=1)) for c in ESCALATION_CATEGORIES}),
        non_examples=per_language(list_of(text, min_items=1)),
        meaning=mapping({
            "min_similarity": number(0.0, 1.0),      # cosine to the nearest example of the category
            "margin": number(0.0, 1.0),              # the category's probability over "stays"
        }),
    ),
    "race_condition_handling": directive(
        conversation_lock_ttl_s=integer(5, 300),
        conversation_lock_wait_s=number(0, 60),
    ),
    "viewing_rules": directive(
        slot_minutes=integer(15, 240),
        buffer_minutes=integer(0, 240),
        min_notice_hours=integer(0, 168),
        horizon_days=integer(1, 90),
        slots_offered=integer(1, 6),
        working_hours=working_week,
        reminders_before_hours=list_of(integer(1, 168)),
        feedback_after_hours=integer(1, 72),
        feedback_window_hours=integer(1, 336),
        reminder_template=optional_text,
        messages=mapping({name: per_language(template(*allowed), gendered=True)
                          for name, allowed in VIEWING_MESSAGES.items()}),
        agent_alert=keyed(template("status", "reference", "when", "customer"), keys=("en", "ar")),
    ),
    "follow_up_rules": directive(
        after_kinds=list_of(one_of("results", "closest", "detail", "answer"), min_items=1),
        delays_hours=list_of(integer(1, 168), min_items=1),
        quiet_hours=hours_pair,
        stop_patterns=mapping({lang: list_of(normalized_regex) for lang in ("en", "ar", "arabizi")}),
        messages=mapping({"nudge": per_language(template("agent_name"), gendered=True)}),
    ),
    "model_replies": directive(
        history_turns=integer(1, 100),
        history_chars=integer(200, 50_000),
        max_tool_rounds=integer(1, 10),
        max_output_tokens=integer(100, 4096),
        regenerations=integer(0, 2),
        on_guard_miss=one_of("offline", "confirm"),
        confirm_reply=per_language(template("agent_name"), gendered=True),
        styles=mapping({style: text for style in PERSONA_STYLES}),
        unrecorded_promises=mapping({lang: list_of(normalized_regex) for lang in ("en", "ar", "arabizi")}),
    ),
}
