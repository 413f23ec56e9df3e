"""The tools a model may call while it writes a reply, each acting for the conversation's own agent.

Reads: the agent's listings (property_lookup, the same search live replies use), area aliases.
Writes: conversations.preferences and .lead (save_lead_details); viewings (viewing_tools). Escalation
and media are recorded on the `ToolContext`; answer_conversation carries them out behind the fence
after the model has finished (escalate_conversation; the pin, photos or brochure after the text).
Guard: the agent and the conversation come from the context, never from the model: no tool takes
an agent id, and an input with any key the schema does not list is refused. Inputs are validated
(types, lengths, ranges, enumerations) before anything runs; a refused input is an error result the
model can correct, never an exception.

usage: python -m execution.assistant_tools --list    (prints the tool definitions the model receives)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Callable

from execution.lib import cli, conversation_store, formatting, property_store
from execution.lib.criteria import Criteria, extract, merge
from execution.lib.listings import PROPERTY_TYPES
from execution.lib.db import Database
from execution.lib.directives import Snapshot
from execution.lib.errors import NotFound
from execution.lib.llm import ToolCall, ToolResult, ToolSpec
from execution.lib.tool_schema import ToolInputError, validate
from execution.property_lookup import find_listings, get_property, remember_preferences
from execution.viewing_tools import VIEWING_HANDLERS, VIEWING_SPECS

CATEGORIES = ("negotiation", "human_request", "legal", "complaint", "out_of_scope")
REFERENCE = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"}
_WORDS = {"type": "string", "maxLength": 80}

SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("search_properties", "Search the agent's own listings. Returns at most a few listings with their "
             "exact facts; `match` is `closest` when filters had to be relaxed.", {
                 "type": "object", "additionalProperties": False, "properties": {
                     "query": {"type": "string", "maxLength": 200, "description": "the customer's words"},
                     "listing_type": {"enum": ["sale", "rent"]},
                     "property_types": {"type": "array", "maxItems": 8, "items": {"enum": list(PROPERTY_TYPES)}},
                     "areas": {"type": "array", "maxItems": 5, "items": _WORDS},
                     "bedrooms_min": {"type": "integer", "minimum": 0, "maximum": 20},
                     "price_min": {"type": "number", "minimum": 0, "maximum": 1e12},
                     "price_max": {"type": "number", "minimum": 0, "maximum": 1e12},
                     "amenities": {"type": "array", "maxItems": 10, "items": _WORDS},
                 }}),
    ToolSpec("get_property", "One of the agent's listings in full, by its reference (e.g. NH-0001).", {
        "type": "object", "additionalProperties": False, "required": ["reference"],
        "properties": {"reference": REFERENCE}}),
    ToolSpec("save_lead_details", "Record what the customer said about themselves and what they want.", {
        "type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string", "maxLength": 80},
            "budget_min": {"type": "number", "minimum": 0, "maximum": 1e12},
            "budget_max": {"type": "number", "minimum": 0, "maximum": 1e12},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "areas": {"type": "array", "maxItems": 5, "items": _WORDS},
            "bedrooms_min": {"type": "integer", "minimum": 0, "maximum": 20},
            "timeline": {"type": "string", "maxLength": 80},
            "financing": {"enum": ["cash", "mortgage", "installments", "unknown"]},
            "intent": {"enum": ["buy", "rent"]},
        }}),
    ToolSpec("escalate_to_human", "Hand the conversation to the agent now (a person is needed: price "
             "negotiation, a request for a person or a call, legal or contract questions, a complaint, or "
             "something only the agent can arrange). Write nothing after calling it.", {
                 "type": "object", "additionalProperties": False, "required": ["reason", "category"],
                 "properties": {"reason": {"type": "string", "minLength": 3, "maxLength": 300},
                                "category": {"enum": list(CATEGORIES)}}}),
    ToolSpec("send_listing_media", "Send the location pin, photos or brochure of a listing retrieved in this "
             "conversation, after your text.", {
                 "type": "object", "additionalProperties": False, "required": ["reference", "kind"],
                 "properties": {"reference": REFERENCE, "kind": {"enum": ["location", "photos", "brochure"]}}}),
)
SPECS += VIEWING_SPECS
BY_NAME = {spec.name: spec for spec in SPECS}


@dataclass
class ToolContext:
    """One reply's tools: who they act for, and what they found and asked for."""
    db: Database
    conversation: dict
    agent: dict
    snapshot: Snapshot
    customer_text: str
    language: str = "en"                                        # the customer's: en | ar | arabizi
    arabic_digits: bool = True                                  # the agent's choice, for Arabic replies
    retrieved: dict[str, dict] = field(default_factory=dict)   # reference (upper) -> listing row
    media: list[dict] = field(default_factory=list)            # OutboundContent fields, sent after the text
    escalation: dict | None = None                              # {"reason", "category"}
    calls: list[str] = field(default_factory=list)
    act: bool = True                                            # False for a preview: nothing is booked
    message_id: int = 0                                         # the customer message answered (booking keys)
    viewing: dict | None = None                                 # booked / moved / cancelled here: {"id", "status"}

    @property
    def agent_id(self) -> int:
        return self.conversation["agent_id"]


def listing_facts(p: dict) -> dict:
    """A listing as the model sees it: exact facts, the price already formatted as replies quote it."""
    return {
        "reference": p["reference"], "project": p.get("project_name"), "type": p["property_type"],
        "for": p["listing_type"], "district": p.get("district"), "district_ar": p.get("district_ar"),
        "city": p.get("city"), "bedrooms": p.get("bedrooms"), "bathrooms": p.get("bathrooms"),
        "area_sqm": float(p["area_sqm"]) if p.get("area_sqm") is not None else None,
        "price": formatting.format_price(p["price"], p["currency"], lang="en", listing_type=p["listing_type"]),
        "payment_plan": p.get("payment_plan"),
        "delivery": p["delivery_date"].strftime("%B %Y") if p.get("delivery_date") else "ready to move in",
        "status": p.get("status", "available"), "amenities": list(p.get("amenities") or ()),
        "has_location": p.get("latitude") is not None, "photos": len(p.get("images") or ()),
        "description": (p.get("description") or "")[:300],
    }


def _areas(conn, ctx: ToolContext, names: list[str]) -> tuple[str, ...]:
    aliases = property_store.load_aliases(conn, organization_id=ctx.conversation["organization_id"])
    return extract(" ، ".join(names), aliases=aliases).areas


def search_properties(ctx: ToolContext, args: dict) -> dict:
    retrieval, sending = ctx.snapshot["property_retrieval"], ctx.snapshot["message_sending_rules"]
    with ctx.db.connection() as conn:
        aliases = property_store.load_aliases(conn, organization_id=ctx.conversation["organization_id"])
        said = extract(args.get("query") or "", aliases=aliases, tolerance_pct=retrieval["budget_tolerance_pct"])
        asked = Criteria(
            property_types=tuple(args.get("property_types") or ()), listing_type=args.get("listing_type"),
            areas=_areas(conn, ctx, args["areas"]) if args.get("areas") else (),
            bedrooms_min=args.get("bedrooms_min"),
            price_min=int(args["price_min"]) if args.get("price_min") is not None else None,
            price_max=int(args["price_max"]) if args.get("price_max") is not None else None,
            amenities=tuple(a.lower() for a in args.get("amenities") or ()))
        criteria = replace(merge(said, asked), reference=None)
        limit = min(retrieval["max_results"], sending["max_listings_per_reply"])
        hits, kind = find_listings(conn, agent_id=ctx.agent_id, criteria=criteria, text=args.get("query"),
                                   retrieval=retrieval, limit=limit)
    for h in hits:
        ctx.retrieved[h.property["reference"].upper()] = h.property
    return {"match": kind if hits else "none", "count": len(hits),
            "listings": [{**listing_facts(h.property), "why": list(h.reasons)} for h in hits]}


def get_listing(ctx: ToolContext, args: dict) -> dict:
    with ctx.db.connection() as conn:
        try:
            row = get_property(conn, agent_id=ctx.agent_id, reference=args["reference"])
        except NotFound:
            raise ToolInputError(f"{args['reference']} is not one of this agent's listings") from None
    ctx.retrieved[row["reference"].upper()] = row
    return {"listing": listing_facts(row)}


def save_lead_details(ctx: ToolContext, args: dict) -> dict:
    lead = {k: v for k, v in args.items() if v not in (None, "", [])}
    with ctx.db.connection() as conn:
        areas = _areas(conn, ctx, args["areas"]) if args.get("areas") else ()
        criteria = Criteria(
            areas=areas, bedrooms_min=args.get("bedrooms_min"),
            listing_type={"buy": "sale", "rent": "rent"}.get(args.get("intent")),
            price_min=int(args["budget_min"]) if args.get("budget_min") is not None else None,
            price_max=int(args["budget_max"]) if args.get("budget_max") is not None else None)
        remember_preferences(conn, conversation_id=ctx.conversation["id"], criteria=criteria)
        saved = conversation_store.merge_lead(conn, conversation_id=ctx.conversation["id"], details=lead)
    return {"saved": sorted(lead), "lead": saved}


def escalate_to_human(ctx: ToolContext, args: dict) -> dict:
    ctx.escalation = {"reason": args["reason"].strip(), "category": args["category"]}
    return {"escalated": True, "note": "The agent takes over now; the customer is told. Write nothing more."}


def send_listing_media(ctx: ToolContext, args: dict) -> dict:
    listing = ctx.retrieved.get(args["reference"].upper())
    if listing is None:
        raise ToolInputError(f"{args['reference']} was not retrieved in this conversation; search or get it first")
    lang = "ar" if ctx.language == "ar" else "en"
    if args["kind"] == "location":
        pin = formatting.location_pin(listing, lang=lang)
        if pin is None:
            raise ToolInputError(f"{listing['reference']} has no location")
        items = [pin]
    elif args["kind"] == "photos":
        items = [{"kind": "file", "url": url, "file_name": f"{listing['reference']}-{i}.jpg"}
                 for i, url in enumerate((listing.get("images") or ())[:3], start=1)]
        if not items:
            raise ToolInputError(f"{listing['reference']} has no photos")
    else:
        raise ToolInputError(f"{listing['reference']} has no brochure on file")
    fresh = [i for i in items if i not in ctx.media]
    ctx.media.extend(fresh)
    return {"queued": len(fresh), "kind": args["kind"], "reference": listing["reference"]}


HANDLERS: dict[str, Callable[[ToolContext, dict], dict]] = {
    "search_properties": search_properties, "get_property": get_listing, "save_lead_details": save_lead_details,
    "escalate_to_human": escalate_to_human, "send_listing_media": send_listing_media, **VIEWING_HANDLERS}


def run_tool(ctx: ToolContext, call: ToolCall) -> ToolResult:
    """Validate and run one call; every refusal is an error result the model reads, never an exception."""
    ctx.calls.append(call.name)
    spec = BY_NAME.get(call.name)
    try:
        if spec is None:
            raise ToolInputError(f"there is no tool {call.name!r}; tools: {sorted(BY_NAME)}")
        validate(spec.input_schema, call.input)
        result = HANDLERS[call.name](ctx, call.input)
    except ToolInputError as exc:
        return ToolResult(call.id, json.dumps({"error": str(exc)}, ensure_ascii=False), is_error=True)
    return ToolResult(call.id, json.dumps(result, ensure_ascii=False, default=_json_default))


def _json_default(value):
    return float(value) if isinstance(value, Decimal) else str(value)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--list", action="store_true", required=True, help="print the tool definitions")
    p.parse_args(argv)
    print(json.dumps([{"name": s.name, "description": s.description, "input_schema": s.input_schema}
                      for s in SPECS], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
