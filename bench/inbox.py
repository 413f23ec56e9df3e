"""Inbox API at scale: list, thread and toggle latency and live-event delivery for one agent with
1,000 conversations and 50,000 messages, each against the /health endpoint in the same run.

Starts the real app (uvicorn, the offline responder; --processes 1: RUN_WORKER=true, 2: the web
process with RUN_WORKER=false plus one `python -m execution.worker`) against a scratch database
seeded with COPY: one organization, one agent with a known password (argon2), one sandbox channel
with the Nile Homes listings, --conversations conversations (chats 2010NNNNNNNN@c.us, named contacts,
a third in Arabic) and --messages messages over them (a skewed number per conversation; customer /
ai / agent / mode changes; realistic lengths; created_at increasing with the id), outbox rows for
the sends, open and resolved escalations, and mode, last_message_at, last_inbound_at, unread_count
and needs_attention consistent with the messages. The inbox triggers are off during the COPY (no
inbox_events backlog) and on again after; then VACUUM ANALYZE.

Then, over HTTP as the agent (POST /api/auth/login; the CSRF token from GET /api/me), one keep-alive
connection, one call at a time (an agent's browser), after a warm-up of each kind:
  idle   GET /health (the baseline), GET /api/me without a session (the floor: routing and a 401,
         no database), GET /api/conversations (first page, the next page by its `before` cursor,
         filters needs_reply / escalated / human; --calls in all, interleaved), GET
         /api/conversations/{id} for random ids (--calls), POST /api/conversations/{id}/mode switching
         random conversations to the other mode (--calls), a few searches (`q`; not a target).
  busy   customer webhooks (Green API shape, the sandbox token) at --load-rate per second from
         --load-chats new customers (2011NNNNNNNN@c.us) in turn, so the worker and the responder are
         answering; after --load-warmup seconds: /health and the floor again, then the toggle.
  events --tabs concurrent GET /api/events streams of the agent; --events customer messages inserted
         straight into the database (one transaction each; the trigger's event id read with currval)
         evenly over --events-over seconds with the load still on; the load stopped, the event table
         quiet and every tab caught up, --events more. The delay from each commit to its frame on
         each stream, taken at the end (a late frame counts with its delay), the client's own CPU and
         event-loop lag (so a slow client is not blamed on the server), the server's CPU. At the end,
         every stream must have every event of the agent written since they all connected (the
         bench's and the worker's).
Printed: p50 / p95 / p99 / max per kind of call, the ratios to /health's p95 and p99 (idle, or busy
for the busy calls), the CPU share of the app's processes meanwhile, the replies the responder wrote
to the load, the SSE delays and delivered / expected, and PASS / FAIL per target:
  list p95 <= 50 ms (each variant), thread p95 <= 50 ms, toggle p99 <= 10 ms with the worker busy,
  SSE delivery p95 <= 1 s with 100 tabs (quiet, and with the worker busy).
Exit status: 0 when every check held (a missed target is reported, not an error); 2 when a check
failed (a response not 200 — the floor's 401 expected, the search's not checked —, a toggle that
changed nothing, a webhook refused, no reply written while busy, an event missing on a tab).

usage: python bench/inbox.py [--conversations 1000] [--messages 50000] [--calls 1000] [--tabs 100]
                             [--events 200] [--events-over 20] [--load-rate 20] [--load-chats 600]
                             [--processes 1|2] [--redis-db 12] [--keep-db]
Uses BENCH_DATABASE_URL / BENCH_REDIS_URL as bench/pipeline.py does (a scratch database created and
dropped, unless --keep-db; Redis database index --redis-db, which must hold only this project's keys;
they are cleared before and after), else embedded PostgreSQL and Redis in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import peak_rss_mb, stop, stop_embedded_redis  # noqa: E402
from bench.scratch import scratch_database  # noqa: E402
from bench.webhook_ack import APP_SECRET_KEY, command_line, free_port, tail, wait_port  # noqa: E402

AGENT_EMAIL = "inbox@bench.example"
AGENT_PASSWORD = "bench-inbox-password-0123"
INSTANCE = "1109300000"
LOAD_CHAT_PREFIX = "2011"
LISTINGS = ROOT / "execution/demo_data/listings_nile_homes.csv"
APP_KEY_PREFIXES = ("lock:conversation:", "idem:", "pace:channel:", "ratelimit:login:")  # execution/lib/guards.py
REDIS_OWNER_KEY = "bench:inbox:owner"
WARMUP = 50
SEARCH_CALLS = 8
SEARCH = "list: search (not a target)"
FLOOR = "GET /api/me, no session (401)"
LIST_P95_MS, THREAD_P95_MS, TOGGLE_P99_MS, SSE_P95_S = 50.0, 50.0, 10.0, 1.0

# --- the data set --------------------------------------------------------------------------------------

EN_FIRST = ["Ahmed", "Mohamed", "Mahmoud", "Omar", "Youssef", "Karim", "Tarek", "Hany", "Sherif", "Amr", "Nour",
            "Mariam", "Salma", "Dina", "Heba", "Yasmin", "Rania", "Laila", "Farida", "Hana", "John", "Sarah", "David",
            "Emma", "Michael", "Sophie", "Lucas", "Anna"]
EN_LAST = ["Hassan", "Ibrahim", "Mostafa", "Abdelrahman", "Saleh", "Fahmy", "Naguib", "Shawky", "El-Sayed", "Khalil",
           "Gamal", "Farouk", "Smith", "Miller", "Rossi", "Schmidt", "Dubois"]
AR_FIRST = ["أحمد", "محمد", "محمود", "عمر", "يوسف", "كريم", "طارق", "هاني", "شريف", "عمرو", "نور", "مريم", "سلمى",
            "دينا", "هبة", "ياسمين", "رانيا", "ليلى", "فريدة", "هنا"]
AR_LAST = ["حسن", "إبراهيم", "مصطفى", "عبد الرحمن", "صالح", "فهمي", "نجيب", "شوقي", "السيد", "خليل", "جمال", "فاروق"]

CUSTOMER_EN = [
    "Hi, is the {n}-bedroom flat in {area} still available?",
    "I'm looking for a {n} bedroom apartment for rent in {area}, budget around {k}k a month",
    "Do you have villas for sale in {area}? Up to {m} million",
    "Can I see the second one this weekend?",
    "What's the payment plan for {ref}?",
    "ok thanks",
    "Is it finished or semi-finished? And does it have a garden? My wife really wants outdoor space for the kids "
    "and we also have a dog, so a ground floor would be ideal",
    "Send me the location please",
    "How far is it from the ring road?",
    "Is the price negotiable at all or is it final? I have been looking for three months now",
    "👍",
    "Any delivery date for {ref}? We need to move before September",
    "Can you send more photos of the kitchen and the master bedroom",
    "Hello",
    "what about something bigger, {n2} bedrooms, same area",
]
CUSTOMER_AR = [
    "مساء الخير، الشقة {n} غرف في {area_ar} لسه متاحة؟",
    "عايز شقة للإيجار في {area_ar} حوالي {k} ألف في الشهر",
    "عندكم فيلا للبيع في {area_ar}؟ الميزانية {m} مليون",
    "ممكن أشوفها يوم الجمعة؟",
    "تمام شكرا",
    "إيه نظام التقسيط في {ref}؟",
    "ابعتلي اللوكيشن لو سمحت",
    "هي متشطبة ولا نص تشطيب؟ وفيها جنينة؟ عندي أطفال ومحتاجين مساحة برة",
    "السلام عليكم",
    "فيه حاجة أكبر شوية، {n2} غرف في نفس المنطقة؟",
    "3ayez sha2a egar fel {area}",
    "الاستلام امتى في {ref}؟ محتاجين ننقل قبل سبتمبر",
]
SHORT_AI_EN = [
    "Sure! Which area do you prefer, and what's your budget?",
    "Happy to help. Are you looking to rent or to buy?",
    "Here is the location of {ref} 📍 {project}, {area}. Would you like to book a viewing?",
    "{ref} is delivered {delivery}. The payment plan is {plan}.",
]
SHORT_AI_AR = [
    "أكيد! تحب أي منطقة، وميزانيتك كام تقريبًا؟",
    "تحت أمرك. حضرتك عايز إيجار ولا تمليك؟",
    "ده لوكيشن {ref} 📍 {project}، {area_ar}. تحب نحجز معاد معاينة؟",
    "{ref} استلام {delivery}. نظام السداد: {plan}.",
]
AGENT_EN = ["I'll call you in 10 minutes", "The owner agreed, let's meet tomorrow at 5 pm at the compound gate",
            "Let me check with the developer and get back to you today",
            "Yes it's still available. I can show it to you on Saturday morning, would 11 work for you?",
            "Sent you the contract draft by email, please review the payment schedule on page 3"]
AGENT_AR = ["هكلم حضرتك كمان ١٠ دقايق", "المالك وافق، نتقابل بكرة الساعة ٥ عند بوابة الكمبوند",
            "هراجع مع المطور وأرد على حضرتك النهاردة", "أيوه لسه متاحة، ممكن نعاينها السبت الساعة ١١؟"]
ESCALATION_RULES = [("price_negotiation", "negotiation"), ("asks_for_a_person", "human_request"),
                    ("legal_or_contract", "legal"), ("complaint", "complaint")]
# None of these escalates (python -m execution.check_escalation --text ...): the load is answered, not handed over.
LOAD_TEXTS = ["I want a 2 bedroom apartment for rent in Maadi",
              "looking for a villa to buy in New Cairo, around 20 million",
              "I need a 3 bedroom flat in New Cairo",
              "عايز شقة للإيجار في المعادي", "3ayez sha2a egar fel maadi",
              "do you have a 3 bedroom apartment for sale in Sheikh Zayed?", "عندكم شاليه في الساحل الشمالي؟"]


def load_listings() -> list[dict]:
    with open(LISTINGS, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f)]


def message_counts(rng: random.Random, n_conv: int, n_msg: int) -> list[int]:
    """A skewed split of n_msg over n_conv conversations (lognormal; each at least 2)."""
    weights = [rng.lognormvariate(0, 1.0) for _ in range(n_conv)]
    total = sum(weights)
    counts = [max(2, round(w / total * n_msg)) for w in weights]
    diff = n_msg - sum(counts)
    order = sorted(range(n_conv), key=lambda i: -counts[i])
    k = 0
    while diff != 0:
        i = order[k % n_conv]
        step = 1 if diff > 0 else -1
        if counts[i] + step >= 2:
            counts[i] += step
            diff -= step
        k += 1
    return counts


def listing_reply(rng: random.Random, listings: list[dict], arabic: bool) -> tuple[str, list[str]]:
    picks = rng.sample(listings, rng.randint(1, 3))
    refs = [p["reference"] for p in picks]
    if rng.random() < 0.3:
        p = picks[0]
        tpl = rng.choice(SHORT_AI_AR if arabic else SHORT_AI_EN)
        text = tpl.format(ref=p["reference"], project=p["project_name"], area=p["district"], area_ar=p["district_ar"],
                          delivery=p["delivery"] or "ready", plan=p["payment_plan"] or "cash")
        return text, [p["reference"]] if "{ref}" in tpl else []
    lines = []
    for k, p in enumerate(picks, 1):
        price = f"{int(float(p['price'])):,}"
        if arabic:
            lines.append(f"{k}. {p['reference']} — {p['property_type']} {p['bedrooms']} غرف في {p['project_name']}، "
                         f"{p['district_ar']}. {p['area_sqm']} م²، {price} جنيه. {p['payment_plan']}")
        else:
            lines.append(f"{k}. {p['reference']} — {p['bedrooms']}-bedroom {p['property_type']} in "
                         f"{p['project_name']}, "
                         f"{p['district']}. {p['area_sqm']} m², EGP {price}. {p['payment_plan']}. "
                         f"{p['description'][:120]}")
    if arabic:
        text = (f"دي {len(picks)} اختيارات مناسبة:\n\n" + "\n".join(lines)
                + "\n\nتحب تعاين واحدة منهم، ولا أبعتلك اللوكيشن؟")
    else:
        text = (f"Here {'is one option' if len(picks) == 1 else f'are {len(picks)} options'} that match:\n\n"
                + "\n".join(lines) + "\n\nWould you like to visit one of them, or shall I send the location?")
    return text, refs


def customer_text(rng: random.Random, listings: list[dict], arabic: bool) -> str:
    p = rng.choice(listings)
    tpl = rng.choice(CUSTOMER_AR if arabic else CUSTOMER_EN)
    n = rng.randint(1, 4)
    return tpl.format(n=n, n2=n + 1, area=p["district"], area_ar=p["district_ar"], k=rng.choice((15, 20, 30, 45)),
                      m=rng.choice((5, 8, 12, 20, 35)), ref=p["reference"])


def build_dataset(rng: random.Random, *, n_conv: int, n_msg: int, org: int, agent: int, channel: int,
                  listings: list[dict]) -> dict:
    """Rows for contacts, conversations, outbox, messages and escalations, with explicit ids."""
    now = datetime.now(timezone.utc)
    horizon = now - timedelta(days=90)
    counts = message_counts(rng, n_conv, n_msg)
    contacts, convs, pending = [], [], []   # pending: (ts, conv index, author, direction, type, body, media, gen)
    escal_plan = {}
    meta = []
    for i in range(n_conv):
        arabic = rng.random() < 0.35
        name = None
        if rng.random() < 0.9:
            name = (f"{rng.choice(AR_FIRST)} {rng.choice(AR_LAST)}" if arabic and rng.random() < 0.7
                    else f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}")
        phone = f"2010{i:08d}"
        count = counts[i]
        r = rng.random()
        open_esc, resolved_esc = r < 0.05, 0.05 <= r < 0.08
        human = open_esc or rng.random() < 0.10
        switch_at = max(1, int(count * rng.uniform(0.4, 0.9))) if human and count >= 3 else None
        seq, mode = [], "AI"
        while len(seq) < count:
            if switch_at is not None and len(seq) >= switch_at and mode == "AI":
                seq.append(("system", "internal", "mode_change"))
                mode = "HUMAN"
                continue
            seq.append(("customer", "inbound", "image" if rng.random() < 0.02 else "text"))
            while rng.random() < 0.3 and len(seq) < count:
                seq.append(("customer", "inbound", "text"))
            if len(seq) < count:
                seq.append(("ai" if mode == "AI" else "agent", "outbound", "text"))
            if mode == "AI" and rng.random() < 0.08 and len(seq) < count:
                seq.append(("ai", "outbound", "location"))
        seq = seq[:count]
        if human and switch_at is None:      # too short for a timeline: taken over at the start
            seq[0] = ("system", "internal", "mode_change")
        unanswered = count >= 4 and rng.random() < 0.2
        if unanswered:
            for k in range(1, rng.randint(1, 3) + 1):
                if seq[-k][0] != "system":
                    seq[-k] = ("customer", "inbound", "text")
        # timestamps: the last one minutes to weeks ago, gaps of minutes with the odd day between visits
        end = now - timedelta(minutes=5 + min(rng.expovariate(1 / (7 * 1440)), 80 * 1440))
        gaps = [rng.expovariate(1 / 15) + (rng.random() < 0.08) * rng.uniform(600, 3000) for _ in range(count - 1)]
        span = sum(gaps)
        room = (end - horizon).total_seconds() / 60
        scale = min(1.0, room / span) if span else 1.0
        times, t = [end], end
        for g in reversed(gaps):
            t -= timedelta(minutes=g * scale, seconds=rng.random())
            times.append(t)
        times.reverse()
        for k, (author, direction, mtype) in enumerate(seq):
            pending.append((times[k], i, k, author, direction, mtype))
        trailing = 0
        for author, _, _ in reversed(seq):
            if author != "customer":
                break
            trailing += 1
        if open_esc or resolved_esc:
            customer_pos = [k for k, s in enumerate(seq) if s[0] == "customer"]
            before_switch = [k for k in customer_pos if switch_at is None or k < switch_at] or customer_pos
            escal_plan[i] = (before_switch[-1], "open" if open_esc else "resolved")
        meta.append({"arabic": arabic, "name": name, "phone": phone, "human": human, "open_esc": open_esc,
                     "unread": trailing if unanswered and rng.random() < 0.8 else 0, "count": count,
                     "first": times[0], "last": times[-1], "switch_time": times[switch_at] if switch_at else times[0],
                     "last_inbound": max((times[k] for k, s in enumerate(seq) if s[0] == "customer"), default=None)})

    pending.sort(key=lambda p: p[0])
    messages, outbox = [], []
    msg_id_at: dict[tuple[int, int], int] = {}
    next_outbox = 1
    n_sent_recent = 0
    for mid, (ts, i, k, author, direction, mtype) in enumerate(pending, 1):
        m = meta[i]
        cid = i + 1
        msg_id_at[(i, k)] = mid
        body = media = gen = pmid = status = outbox_id = ptime = None
        if author == "customer":
            pmid, ptime = f"SEEDIN{mid:012d}", ts
            if mtype == "image":
                media = {"url": f"https://media.example/{mid}.jpg", "mime_type": "image/jpeg"}
            else:
                body = customer_text(rng, listings, m["arabic"])
        elif author == "system":
            media = {"mode": "HUMAN", "actor": f"inbox:{agent}", "reason": "inbox" if not m["open_esc"] else
                     "escalation:price_negotiation", "mode_version": 1}
        else:
            if author == "ai":
                if mtype == "location":
                    p = rng.choice(listings)
                    media = {"latitude": float(p["latitude"] or 30.0), "longitude": float(p["longitude"] or 31.2),
                             "name": p["project_name"], "address": p["district"]}
                    refs = [p["reference"]]
                else:
                    body, refs = listing_reply(rng, listings, m["arabic"])
                gen = {"backend": "claude", "model": "claude-sonnet-5-5", "input_tokens": rng.randint(2500, 9000),
                       "output_tokens": rng.randint(60, 400), "cache_read_tokens": rng.randint(0, 6000),
                       "cache_write_tokens": 0, "latency_ms": rng.randint(900, 6000),
                       "tool_calls": [{"name": "search_listings", "ok": True}], "guard": "passed",
                       "guard_reasons": [], "references": refs}
            else:
                body = rng.choice(AGENT_AR if m["arabic"] else AGENT_EN)
            age = now - ts
            status = ("failed" if rng.random() < 0.005 else "read" if age > timedelta(hours=6)
                      else rng.choice(("sent", "delivered", "read")))
            pmid = f"SANDBOX{uuid.UUID(int=rng.getrandbits(128)).hex[:20].upper()}"
            outbox_id = next_outbox
            next_outbox += 1
            kind = "location" if mtype == "location" else "text"
            payload = {"kind": kind, "text": body} if kind == "text" else {"kind": kind, **media}
            outbox.append((outbox_id, org, cid, channel, f"seed:{mid}", kind, author,
                           json.dumps(payload, ensure_ascii=False),
                           "failed" if status == "failed" else "sent", 0 if author == "ai" else None,
                           None if status == "failed" else pmid, 1, ts, None if status == "failed" else ts))
            n_sent_recent += age < timedelta(hours=6)
        messages.append((mid, org, cid, direction, author, mtype, body,
                         None if media is None else json.dumps(media, ensure_ascii=False), pmid, status, outbox_id,
                         ptime, ts, None if gen is None else json.dumps(gen)))
    escalations = []
    for n, (i, (k, status)) in enumerate(sorted(escal_plan.items()), 1):
        rule, category = ESCALATION_RULES[n % len(ESCALATION_RULES)]
        at = pending[msg_id_at[(i, k)] - 1][0]
        escalations.append((n, org, i + 1, msg_id_at[(i, k)], rule, category, status, "sent", at,
                            at + timedelta(hours=3) if status == "resolved" else None,
                            f"the customer's message matched {rule}"))
    for i, m in enumerate(meta):
        cid = i + 1
        contacts.append((cid, org, m["phone"], m["name"], m["first"]))
        lead = {"name": m["name"]} if m["name"] and rng.random() < 0.5 else {}
        convs.append((cid, org, agent, channel, cid, f"{m['phone']}@c.us", m["name"] or m["phone"],
                      "HUMAN" if m["human"] else "AI", 1 if m["human"] else 0,
                      m["switch_time"] if m["human"] else None,
                      ("escalation:price_negotiation" if m["open_esc"] else "inbox") if m["human"] else None,
                      m["unread"], m["open_esc"] or (m["unread"] > 0 and m["human"]) or rng.random() < 0.02,
                      m["last_inbound"], m["last"], m["first"], json.dumps(lead, ensure_ascii=False)))
    return {"contacts": contacts, "conversations": convs, "outbox": outbox, "messages": messages,
            "escalations": escalations, "meta": meta}


COLUMNS = {
    "contacts": "id, organization_id, phone, display_name, created_at",
    "conversations": "id, organization_id, agent_id, channel_id, contact_id, chat_id, title, mode, mode_version, "
                     "mode_changed_at, mode_reason, unread_count, needs_attention, last_inbound_at, last_message_at, "
                     "created_at, lead",
    "outbox": "id, organization_id, conversation_id, channel_id, idempotency_key, kind, author, payload, status, "
              "mode_version, provider_message_id, attempts, created_at, sent_at",
    "messages": "id, organization_id, conversation_id, direction, author, message_type, body, media, "
                "provider_message_id, delivery_status, outbox_id, provider_timestamp, created_at, generation",
    "escalations": "id, organization_id, conversation_id, message_id, rule, category, status, alert_status, "
                   "created_at, resolved_at, reason",
}


def _csv_field(v) -> str:
    """COPY's CSV: NULL unquoted and empty, every text quoted (so an empty text stays a text)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (int, float)):
        return str(v)
    return '"' + str(v).replace('"', '""') + '"'


def copy_rows(cur, table: str, rows: list[tuple]) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write(",".join(map(_csv_field, row)) + "\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({COLUMNS[table]}) FROM STDIN WITH (FORMAT csv)", buf)


def seed(dsn: str, *, n_conv: int, n_msg: int, rng: random.Random) -> dict:
    """The agent, its sandbox channel and listings, and the inbox data set; returns what the load needs."""
    from execution.lib import tenant_store
    from execution.lib.db import connect, transaction
    from execution.lib.listing_import import import_listings
    from execution.lib.security import hash_password, hash_token, sandbox_webhook_token

    listings = load_listings()
    c = connect(dsn, statement_timeout_ms=600_000)
    try:
        with transaction(c):
            org = tenant_store.upsert_organization(c, slug="bench-inbox", name="Bench Inbox Realty")
            agent = tenant_store.upsert_agent(c, organization_id=org["id"], email=AGENT_EMAIL, name="Bench Agent",
                                              password_hash=hash_password(AGENT_PASSWORD))
            channel = tenant_store.upsert_channel(
                c, organization_id=org["id"], agent_id=agent["id"], provider="sandbox", instance_id=INSTANCE,
                webhook_token_hash=hash_token(sandbox_webhook_token(APP_SECRET_KEY, INSTANCE)))
        report = import_listings(c, path=LISTINGS, reassign=True,
                                 agent={"id": agent["id"], "organization_id": org["id"], "email": AGENT_EMAIL})
        if report.exit_code or not report.written:
            raise SystemExit(f"listing import failed: {report}")
        data = build_dataset(rng, n_conv=n_conv, n_msg=n_msg, org=org["id"], agent=agent["id"],
                             channel=channel["id"], listings=listings)
        with transaction(c), c.cursor() as cur:
            cur.execute("ALTER TABLE messages DISABLE TRIGGER messages_inbox_event")
            cur.execute("ALTER TABLE escalations DISABLE TRIGGER escalations_inbox_event")
            for table in ("contacts", "conversations", "outbox", "messages", "escalations"):
                copy_rows(cur, table, data[table])
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cur.execute("ALTER TABLE messages ENABLE TRIGGER messages_inbox_event")
            cur.execute("ALTER TABLE escalations ENABLE TRIGGER escalations_inbox_event")
        with c.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
            cur.execute("SELECT count(*) AS n FROM inbox_events")
            backlog = cur.fetchone()["n"]
    finally:
        c.close()
    meta = data["meta"]
    return {"org": org["id"], "agent": agent["id"], "channel": channel["id"], "meta": meta,
            "modes": {i + 1: ("HUMAN" if m["human"] else "AI") for i, m in enumerate(meta)},
            "sizes": {i + 1: m["count"] for i, m in enumerate(meta)},
            "rows": {t: len(data[t]) for t in COLUMNS}, "inbox_events": backlog,
            "open_escalations": sum(1 for e in data["escalations"] if e[6] == "open"),
            "unread_convs": sum(1 for m in meta if m["unread"]),
            "human_convs": sum(1 for m in meta if m["human"])}


# --- Redis ---------------------------------------------------------------------------------------------

class RedisScope:
    """A Redis database index of the bench's own: checked empty (or only this project's keys), cleared after."""

    def __init__(self, url: str, db: int) -> None:
        import redis as redis_lib

        self.url = urlunsplit(urlsplit(url)._replace(path=f"/{db}"))
        self.db = db
        self.client = redis_lib.Redis.from_url(self.url)
        self.token = f"{os.getpid()}:{uuid.uuid4().hex}"

    def claim(self, ttl_s: int) -> None:
        if not self.client.set(REDIS_OWNER_KEY, self.token, nx=True, ex=ttl_s):
            raise SystemExit(f"Redis db {self.db} is in use by another inbox bench ({REDIS_OWNER_KEY} is set); "
                             f"choose another --redis-db")
        foreign = [k.decode(errors="replace") for k in self.client.scan_iter(count=1000)
                   if not k.decode(errors="replace").startswith(APP_KEY_PREFIXES + (REDIS_OWNER_KEY,))]
        if foreign:
            self.client.delete(REDIS_OWNER_KEY)
            raise SystemExit(f"Redis db {self.db} holds keys that are not this project's (e.g. {foreign[:3]}); "
                             f"refusing to clear it — choose another --redis-db")
        self.clear()

    def clear(self) -> None:
        for prefix in APP_KEY_PREFIXES:
            keys = list(self.client.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                self.client.delete(*keys[i:i + 500])

    def release(self) -> None:
        try:
            self.clear()
            if self.client.get(REDIS_OWNER_KEY) == self.token.encode():
                self.client.delete(REDIS_OWNER_KEY)
        finally:
            self.client.close()


# --- HTTP calls ----------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(len(s) * p) - 1)]


class Calls:
    """Latencies (ms) and statuses of one kind of call."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.ms: list[float] = []
        self.codes: Counter = Counter()
        self.bytes = 0
        self.bad: list[str] = []
        self.cpu: dict[str, float] = {}

    def add(self, ms: float, code: int, size: int, note: str = "") -> None:
        self.ms.append(ms)
        self.codes[code] += 1
        self.bytes += size
        if code != 200 and len(self.bad) < 3:
            self.bad.append(f"{code} {note}")

    def p(self, q: float) -> float:
        return pct(self.ms, q) if self.ms else float("nan")


class NoAnswer:
    """What a call that got no HTTP answer (the server closed or reset the connection) counts as: status 0."""

    status_code = 0
    content = b""

    def __init__(self, exc: Exception) -> None:
        self.text = f"{type(exc).__name__}: {exc}"

    def json(self) -> dict:
        return {}


def timed(client, method: str, url: str, **kw):
    import httpx

    t0 = time.perf_counter()
    try:
        r = client.request(method, url, **kw)
    except httpx.TransportError as exc:
        r = NoAnswer(exc)
    return (time.perf_counter() - t0) * 1000, r


def run_calls(client, plan: list[tuple[Calls, str, str, dict]]) -> None:
    for calls, method, url, kw in plan:
        ms, r = timed(client, method, url, **kw)
        calls.add(ms, r.status_code, len(r.content), r.text[:160] if r.status_code != 200 else "")


# --- the busy worker: customer webhooks at a steady rate -----------------------------------------------

class Load(threading.Thread):
    """POSTs Green API-shaped customer messages to the sandbox channel at `rate` per second."""

    def __init__(self, port: int, chats: list[str], rate: float) -> None:
        super().__init__(name="load", daemon=True)
        from execution.lib.security import sandbox_webhook_token

        self.port, self.chats, self.rate = port, chats, rate
        self.auth = {"Authorization": f"Bearer {sandbox_webhook_token(APP_SECRET_KEY, INSTANCE)}",
                     "Content-Type": "application/json"}
        self.codes: Counter = Counter()
        self.sent = 0
        self.started_at = self.stopped_at = 0.0
        self._halt = threading.Event()
        self.errors: list[str] = []

    def body(self, n: int) -> bytes:
        chat = self.chats[n % len(self.chats)]
        return json.dumps({
            "typeWebhook": "incomingMessageReceived",
            "instanceData": {"idInstance": int(INSTANCE), "wid": f"{INSTANCE}@c.us", "typeInstance": "whatsapp"},
            "timestamp": int(time.time()), "idMessage": f"BENCHINBOX{uuid.uuid4().hex[:22].upper()}",
            "senderData": {"chatId": chat, "chatName": "Load", "sender": chat, "senderName": "Load"},
            "messageData": {"typeMessage": "textMessage",
                            "textMessageData": {"textMessage": LOAD_TEXTS[(n // len(self.chats)) % len(LOAD_TEXTS)]}},
        }, ensure_ascii=False).encode()

    def run(self) -> None:
        import httpx

        self.started_at = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as client:
            n = 0
            while not self._halt.is_set():
                delay = self.started_at + n / self.rate - time.monotonic()
                if delay > 0 and self._halt.wait(delay):
                    break
                try:
                    r = client.post("/webhooks/green-api", content=self.body(n), headers=self.auth)
                    self.codes[r.status_code] += 1
                    if r.status_code != 200 and len(self.errors) < 3:
                        self.errors.append(f"{r.status_code} {r.text[:120]}")
                except Exception as exc:  # reported as a failed check
                    self.codes[0] += 1
                    if len(self.errors) < 3:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                n += 1
                self.sent = n
        self.stopped_at = time.monotonic()

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def db_connect(dsn: str, *, attempts: int = 60):
    """A connection of the bench's own; the server is shared, so a full house (too many clients) is waited out."""
    from execution.lib.db import connect
    from execution.lib.errors import DatabaseUnavailable

    for k in range(attempts):
        try:
            return connect(dsn, statement_timeout_ms=60_000)
        except DatabaseUnavailable:
            if k == attempts - 1:
                raise
            time.sleep(1)


class Observer:
    """The bench's one reading connection: replies written, backlog, the event table."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = db_connect(dsn)

    def one(self, sql: str, params: tuple = ()) -> dict:
        from execution.lib.errors import DatabaseUnavailable
        import psycopg2

        for attempt in range(2):
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()
            except (psycopg2.OperationalError, psycopg2.InterfaceError, DatabaseUnavailable):
                if attempt:
                    raise
                self.conn = db_connect(self.dsn)

    def ai_replies(self, chat_prefix: str) -> int:
        return int(self.one("SELECT count(*) AS n FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                            "WHERE m.author = 'ai' AND c.chat_id LIKE %s", (chat_prefix + "%",))[0]["n"])

    def backlog(self) -> dict:
        events = {r["k"]: int(r["n"]) for r in self.one(
            "SELECT status AS k, count(*) AS n FROM webhook_events GROUP BY 1")}
        lag = self.one("SELECT round(extract(epoch FROM avg(processed_at - received_at))::numeric, 2) AS avg_s, "
                       "round(extract(epoch FROM max(processed_at - received_at))::numeric, 2) AS max_s "
                       "FROM webhook_events WHERE processed_at IS NOT NULL")[0]
        due = int(self.one("SELECT count(*) AS n FROM conversations WHERE reply_due_at IS NOT NULL")[0]["n"])
        return {"webhook_events": events, "webhook → applied avg/max s": (float(lag["avg_s"] or 0),
                                                                          float(lag["max_s"] or 0)),
                "replies due": due}

    def max_event_id(self) -> int:
        return int(self.one("SELECT coalesce(max(id), 0) AS id FROM inbox_events")[0]["id"])

    def agent_events(self, agent: int, after: int) -> list[dict]:
        return self.one("SELECT id, conversation_id, kind FROM inbox_events WHERE agent_id = %s AND id > %s "
                        "ORDER BY id", (agent, after))

    def close(self) -> None:
        try:
            self.conn.close()
        except psycopg2.Error:
            pass


# --- live events ---------------------------------------------------------------------------------------

async def tab(port: int, cookie: str, arrivals: dict[int, float], connected: asyncio.Event, fail: list[str]) -> None:
    """One open inbox tab: GET /api/events, the chunked SSE body read frame by frame; each id's arrival time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write((f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                      f"Cookie: session={cookie}\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        chunked = False
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if b" 200 " not in status or not chunked:
            fail.append(f"{status.decode().strip()} (chunked={chunked})")
            connected.set()
            return
        buf = ""
        first = True
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            t = time.monotonic()
            buf += data[:-2].decode()
            while "\n\n" in buf:
                frame, buf = buf.split("\n\n", 1)
                if first:
                    first = False
                    connected.set()
                for line in frame.split("\n"):
                    if line.startswith("id: "):
                        arrivals.setdefault(int(line[4:]), t)
    finally:
        writer.close()


def insert_events(dsn: str, *, agent_conversations: list[int], n: int, over_s: float, start: float,
                  rng: random.Random, org: int) -> list[tuple[int, int, float, float]]:
    """n customer messages, one transaction each, at start + k × over_s / n.

    Returns (event id, conversation, t_begin, t_commit) for each."""
    out = []
    c = db_connect(dsn)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT pg_get_serial_sequence('inbox_events', 'id') AS s")
            seq = cur.fetchone()["s"]
            for k in range(n):
                delay = start + k * over_s / n - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                cid = rng.choice(agent_conversations)
                t0 = time.monotonic()
                cur.execute("BEGIN")
                cur.execute("INSERT INTO messages (organization_id, conversation_id, direction, author, message_type, "
                            "body, provider_message_id, provider_timestamp) VALUES (%s, %s, 'inbound', 'customer', "
                            "'text', %s, %s, now())",
                            (org, cid, f"live event {k}: is it still available?", f"BENCHSSE{uuid.uuid4().hex[:20]}"))
                cur.execute("UPDATE conversations SET unread_count = unread_count + 1, last_inbound_at = now(), "
                            "last_message_at = now() WHERE id = %s", (cid,))
                cur.execute("SELECT currval(%s) AS id", (seq,))
                event_id = cur.fetchone()["id"]
                cur.execute("COMMIT")
                out.append((event_id, cid, t0, time.monotonic()))
    finally:
        c.close()
    return out


def delivery(arrivals: list[dict[int, float]], inserted: list[tuple[int, int, float, float]]) -> dict:
    """Commit → frame delays of the inserted events over every tab, and how many (event, tab) pairs are missing."""
    delays, missing, worst_tab_p95 = [], 0, 0.0
    for arr in arrivals:
        d = [arr[e] - tc for e, _, _, tc in inserted if e in arr]
        missing += len(inserted) - len(d)
        delays.extend(d)
        if d:
            worst_tab_p95 = max(worst_tab_p95, pct(d, 0.95))
    return {"inserted": len(inserted), "delays": delays, "missing": missing, "worst_tab_p95": worst_tab_p95,
            "commit_ms": statistics.median([(tc - tb) * 1000 for _, _, tb, tc in inserted]) if inserted else 0.0}


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late this process's own event loop wakes up (a busy client would inflate the delays it measures)."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        samples.append(time.monotonic() - t - 0.01)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuMeter:
    """The share of a CPU each process started used between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.t0, self.c0 = 0.0, {}

    def start(self) -> "CpuMeter":
        self.t0, self.c0 = time.monotonic(), {k: cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        wall = max(1e-6, time.monotonic() - self.t0)
        return {k: (cpu_seconds(p) - self.c0[k]) / wall for k, p in self.pids.items()}


def fmt_cpu(shares: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) + " of a CPU"


async def sse_phase(port: int, cookie: str, dsn: str, obs: Observer, args, seeded: dict, conversation_ids: list[int],
                    load: Load | None, rng: random.Random, pids: dict[str, int]) -> dict:
    """--tabs streams; --events inserted while the load runs; the load stopped, the table quiet and every tab
    caught up; --events more. Delays are taken at the end, so a frame that came late counts with its delay."""
    arrivals = [dict() for _ in range(args.tabs)]
    connected = [asyncio.Event() for _ in range(args.tabs)]
    fail: list[str] = []
    t_open = time.monotonic()
    tasks = [asyncio.create_task(tab(port, cookie, arrivals[k], connected[k], fail)) for k in range(args.tabs)]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 60)
    except asyncio.TimeoutError:
        fail.append(f"only {sum(e.is_set() for e in connected)} of {args.tabs} tabs connected within 60 s")
    connect_s = time.monotonic() - t_open
    loop = asyncio.get_running_loop()
    start_id = await loop.run_in_executor(None, obs.max_event_id)
    out: dict = {"tabs": args.tabs, "connect_s": connect_s, "fail": fail}
    inserted: dict[str, list] = {}

    async def insert_run(label: str) -> None:
        lag: list[float] = []
        stop = asyncio.Event()
        lag_task = asyncio.create_task(loop_lag(lag, stop))
        frames0 = sum(len(a) for a in arrivals)
        cpu0, t0, meter = time.process_time(), time.monotonic(), CpuMeter(pids).start()
        inserted[label] = await loop.run_in_executor(None, lambda: insert_events(
            dsn, agent_conversations=conversation_ids, n=args.events, over_s=args.events_over,
            start=time.monotonic() + 0.5, rng=rng, org=seeded["org"]))
        wall = time.monotonic() - t0
        stop.set()
        await lag_task
        out[label] = {"frames_per_s": (sum(len(a) for a in arrivals) - frames0) / wall,
                      "client_cpu": (time.process_time() - cpu0) / wall, "server_cpu": meter.stop(),
                      "loop_lag_p95_ms": pct(lag, 0.95) * 1000 if lag else 0.0,
                      "loop_lag_max_ms": max(lag) * 1000 if lag else 0.0, "loadavg": os.getloadavg()[0]}

    async def caught_up(label: str, limit_s: float = 180) -> float:
        """Seconds until every tab has every event inserted in that run (bounded)."""
        t0 = time.monotonic()
        ids = [e for e, _, _, _ in inserted[label]]
        while time.monotonic() - t0 < limit_s and not all(all(i in arr for i in ids) for arr in arrivals):
            await asyncio.sleep(0.2)
        return time.monotonic() - t0

    await insert_run("busy" if load is not None else "quiet")
    if load is not None:
        load.stop()
        stopped = time.monotonic()
        out["busy"]["caught_up_s"] = await caught_up("busy")
        # The worker finishes what the load left; the event table is quiet; then the quiet run starts.
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() - stopped < 120:
            now_max = await loop.run_in_executor(None, obs.max_event_id)
            if now_max != last:
                last, quiet_since = now_max, time.monotonic()
            elif time.monotonic() - quiet_since >= 3:
                break
            await asyncio.sleep(0.5)
        out["drain_s"] = quiet_since - stopped
        await insert_run("quiet")
    out["quiet"]["caught_up_s"] = await caught_up("quiet", 30)
    await asyncio.sleep(1.0)
    expected = await loop.run_in_executor(None, obs.agent_events, seeded["agent"], start_id)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for label, rows in inserted.items():
        out[label].update(delivery(arrivals, rows))
    lost, partly = [], []
    for r in expected:
        absent = sum(1 for arr in arrivals if r["id"] not in arr)
        if absent == len(arrivals):
            lost.append((r["id"], r["kind"], r["conversation_id"]))
        elif absent:
            partly.append((r["id"], r["kind"], absent))
    out.update({"expected_all": len(expected), "kinds": Counter(r["kind"] for r in expected), "lost": lost,
                "partly": partly})
    return out


# --- main ----------------------------------------------------------------------------------------------

def toggle_calls(client, calls: Calls, ids: list[int], modes: dict[int, str], csrf: str, n: int,
                 rng: random.Random) -> int:
    """n (+ warm-up) POST .../mode to random conversations, each to the mode it is not in; how many changed it."""
    changed = 0
    for k in range(n + WARMUP):
        cid = rng.choice(ids)
        target = "AI" if modes[cid] == "HUMAN" else "HUMAN"
        ms, r = timed(client, "POST", f"/api/conversations/{cid}/mode", json={"mode": target},
                      headers={"X-CSRF-Token": csrf})
        if r.status_code == 200:
            body = r.json()
            modes[cid] = body.get("mode", modes[cid])
            changed += bool(body.get("changed")) and k >= WARMUP
        if k >= WARMUP:
            calls.add(ms, r.status_code, len(r.content), r.text[:160] if r.status_code != 200 else "")
    return changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=50000)
    ap.add_argument("--calls", type=int, default=1000,
                    help="measured calls per endpoint (list, thread, toggle, health)")
    ap.add_argument("--tabs", type=int, default=100, help="concurrent /api/events streams")
    ap.add_argument("--events", type=int, default=200, help="messages inserted per events run (busy, then quiet)")
    ap.add_argument("--events-over", type=float, default=20.0, help="seconds over which they are inserted")
    ap.add_argument("--load-rate", type=float, default=20.0, help="customer webhooks per second while busy")
    ap.add_argument("--load-chats", type=int, default=600,
                    help="new customers the load writes from, in turn (each writes every load-chats / load-rate s)")
    ap.add_argument("--load-warmup", type=float, default=5.0, help="seconds of load before the busy measurements")
    ap.add_argument("--processes", type=int, choices=(1, 2), default=1,
                    help="1: the worker in the web process (RUN_WORKER=true); 2: the web process with "
                         "RUN_WORKER=false and one `python -m execution.worker`")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--redis-db", type=int, default=12, help="Redis database index used with BENCH_REDIS_URL")
    ap.add_argument("--keep-db", action="store_true", help="keep the scratch database (its DSN is printed)")
    args = ap.parse_args()
    if args.messages < 2 * args.conversations or args.load_chats < 1 or args.load_rate <= 0 or args.calls < 1:
        ap.error("--messages must be at least 2 × --conversations; --calls, --load-chats and --load-rate positive")

    print(f"command: {command_line()}")
    print(f"options: conversations={args.conversations} messages={args.messages} calls={args.calls} tabs={args.tabs} "
          f"events={args.events}+{args.events} over {args.events_over:g}s each; load {args.load_rate:g}/s from "
          f"{args.load_chats} customers; processes={args.processes} seed={args.seed} "
          f"DB_POOL_MAX={os.environ.get('DB_POOL_MAX', '(default)')} "
          f"REPLY_WORKERS={os.environ.get('REPLY_WORKERS', '(default)')} cpus={os.cpu_count()} "
          f"loadavg={os.getloadavg()[0]:.1f}", flush=True)

    import httpx

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    data_dir = tmp / "data"
    logs = {"web": tmp / "web.log", "worker": tmp / "worker.log"}
    procs: dict[str, subprocess.Popen] = {}
    redis_scope: RedisScope | None = None
    cleanup = None
    load: Load | None = None
    obs: Observer | None = None
    interrupted = False
    res: dict = {}

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        env = {**os.environ, "APP_ENV": "test", "LOG_LEVEL": "WARNING", "LLM_BACKEND": "offline",
               "APP_SECRET_KEY": APP_SECRET_KEY, "DATA_DIR": str(data_dir)}
        env.pop("REDIS_URL", None)
        if os.environ.get("BENCH_REDIS_URL"):
            redis_scope = RedisScope(os.environ["BENCH_REDIS_URL"], args.redis_db)
            redis_scope.claim(ttl_s=3600)
            env["REDIS_URL"] = redis_scope.url

        t0 = time.monotonic()
        dsn, cleanup = scratch_database(tmp)
        seeded = seed(dsn, n_conv=args.conversations, n_msg=args.messages, rng=rng)
        env["DATABASE_URL"] = dsn
        sizes = seeded["sizes"]
        print(f"seeded in {time.monotonic() - t0:.1f}s: {seeded['rows']}; {seeded['human_convs']} HUMAN, "
              f"{seeded['open_escalations']} open escalations, {seeded['unread_convs']} with unread; messages per "
              f"conversation min {min(sizes.values())} median {statistics.median(sizes.values()):g} "
              f"max {max(sizes.values())}; inbox_events {seeded['inbox_events']}", flush=True)
        if args.keep_db:
            print(f"scratch database kept: {dsn}")

        port = free_port()
        with open(logs["web"], "ab") as out:
            procs["web"] = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                 "--log-level", "warning", "main:app"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**env, "RUN_WORKER": "true" if args.processes == 1 else "false"})
        wait_port(port, procs["web"], logs["web"])
        if args.processes == 2:
            with open(logs["worker"], "ab") as out:
                procs["worker"] = subprocess.Popen([sys.executable, "-m", "execution.worker"], cwd=ROOT, env=env,
                                                   stdout=out, stderr=subprocess.STDOUT)
            time.sleep(2)
            if procs["worker"].poll() is not None:
                raise SystemExit(f"worker exited with {procs['worker'].returncode}; its log ({logs['worker']}):\n"
                                 f"{tail(logs['worker'])}")

        # The load writes from new customers (2011NNNNNNNN@c.us) on the agent's sandbox channel, each of
        # them every --load-chats / --load-rate seconds; the toggle and the live events use the seeded ones.
        load_chats = [f"{LOAD_CHAT_PREFIX}{k:08d}@c.us" for k in range(args.load_chats)]
        all_ids = list(seeded["modes"])
        modes = dict(seeded["modes"])
        obs = Observer(dsn)

        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        anonymous = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        r = client.post("/api/auth/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
        if r.status_code != 200:
            raise SystemExit(f"login failed: {r.status_code} {r.text[:200]}")
        csrf = client.get("/api/me").json()["csrf_token"]
        cookie = client.cookies.get("session")

        calls: dict[str, Calls] = {}
        res["calls"], res["sizes"] = calls, sizes

        def kind(label: str) -> Calls:
            return calls.setdefault(label, Calls(label))

        meter = CpuMeter({k: p.pid for k, p in procs.items()}).start()

        def said(label: str, cpu: bool = True) -> None:
            c = calls[label]
            if cpu:
                c.cpu = meter.stop()
            print(f"  {label}: p50 {c.p(0.5):.1f} ms, p95 {c.p(0.95):.1f} ms, p99 {c.p(0.99):.1f} ms "
                  f"{dict(c.codes)}" + (f"; {fmt_cpu(c.cpu)}" if cpu else "")
                  + f"; loadavg {os.getloadavg()[0]:.1f}", flush=True)
            meter.start()

        n = args.calls
        # --- idle: /health, the floor, the list, the thread, the toggle
        print(f"idle: /health, list, thread, toggle ... (loadavg {os.getloadavg()[0]:.1f})", flush=True)
        cursor = client.get("/api/conversations", params={"limit": 30}).json()["next"]
        variants = [("list: first page", {"limit": 30}),
                    ("list: next page (before)", {"limit": 30, "before": cursor}),
                    ("list: filter needs_reply", {"limit": 30, "filter": "needs_reply"}),
                    ("list: filter escalated", {"limit": 30, "filter": "escalated"}),
                    ("list: filter human", {"limit": 30, "filter": "human"})]
        for _ in range(WARMUP):
            client.get("/health")
            anonymous.get("/api/me")
            for _, params in variants:
                client.get("/api/conversations", params=params)
            client.get(f"/api/conversations/{rng.choice(all_ids)}")
        run_calls(client, [(kind("/health (idle)"), "GET", "/health", {}) for _ in range(n)])
        said("/health (idle)")
        run_calls(anonymous, [(kind(FLOOR + " (idle)"), "GET", "/api/me", {}) for _ in range(n)])
        said(FLOOR + " (idle)")
        plan = [(kind(label), "GET", "/api/conversations", {"params": params})
                for k in range(n) for label, params in [variants[k % len(variants)]]]
        rng.shuffle(plan)
        run_calls(client, plan)
        list_cpu = meter.stop()
        for label, _ in variants:
            said(label, cpu=False)
            calls[label].cpu = list_cpu
        thread_ms: list[tuple[int, float]] = []
        res["thread_ms"] = thread_ms
        th = kind("thread")
        for cid in [rng.choice(all_ids) for _ in range(n)]:
            ms, r = timed(client, "GET", f"/api/conversations/{cid}")
            th.add(ms, r.status_code, len(r.content), r.text[:160] if r.status_code != 200 else "")
            thread_ms.append((cid, ms))
        said("thread")
        res["toggles"] = {"idle": toggle_calls(client, kind("toggle (idle)"), all_ids, modes, csrf, n, rng)}
        said("toggle (idle)")
        run_calls(client, [(kind(SEARCH), "GET", "/api/conversations", {"params": {"limit": 30, "q": q}})
                           for q in ["maadi", "المعادي", "2010000", "Hassan"] * (SEARCH_CALLS // 4)])
        said(SEARCH)

        # --- busy: webhooks keep the worker answering; /health and the floor again, then the toggle
        print(f"busy: {args.load_rate:g} customer webhooks/s from {args.load_chats} new customers; "
              f"{args.load_warmup:g}s warm-up, then /health and the toggle ... (loadavg {os.getloadavg()[0]:.1f})",
              flush=True)
        replies_before = obs.ai_replies(LOAD_CHAT_PREFIX)
        load = Load(port, load_chats, args.load_rate)
        load.start()
        time.sleep(args.load_warmup)
        replies_warm = obs.ai_replies(LOAD_CHAT_PREFIX)
        sent_warm = load.sent
        busy_t0 = time.monotonic()
        for _ in range(WARMUP):
            client.get("/health")
        meter.start()
        run_calls(client, [(kind("/health (busy)"), "GET", "/health", {}) for _ in range(n)])
        said("/health (busy)")
        run_calls(anonymous, [(kind(FLOOR + " (busy)"), "GET", "/api/me", {}) for _ in range(n)])
        said(FLOOR + " (busy)")
        res["toggles"]["busy"] = toggle_calls(client, kind("toggle (busy)"), all_ids, modes, csrf, n, rng)
        said("toggle (busy)")
        busy_s = time.monotonic() - busy_t0
        replies_after = obs.ai_replies(LOAD_CHAT_PREFIX)
        res["busy"] = {"replies_warmup": replies_warm - replies_before, "replies": replies_after - replies_warm,
                       "seconds": busy_s, "webhooks": load.sent - sent_warm, "backlog": obs.backlog()}
        print(f"  the responder wrote {res['busy']['replies']} replies to the load in the {busy_s:.1f}s measured "
              f"({res['busy']['replies'] / busy_s:.1f}/s) while {res['busy']['webhooks']} webhooks came in; "
              f"{res['busy']['backlog']}", flush=True)

        # --- live events: the load still running, then stopped
        print(f"events: {args.tabs} tabs; {args.events} messages over {args.events_over:g}s with the load on, then "
              f"as many once it is drained ... (loadavg {os.getloadavg()[0]:.1f})", flush=True)
        try:
            res["sse"] = asyncio.run(sse_phase(port, cookie, dsn, obs, args, seeded, all_ids, load, rng,
                                                {k: p.pid for k, p in procs.items()}))
        except Exception as exc:
            res["sse_error"] = f"{type(exc).__name__}: {exc}"
            print(f"  the events phase failed: {res['sse_error']}", flush=True)
        if load.is_alive():
            load.stop()
        res["load_total"] = {"webhooks": load.sent, "codes": dict(load.codes), "errors": load.errors,
                             "seconds": load.stopped_at - load.started_at,
                             "replies": obs.ai_replies(LOAD_CHAT_PREFIX) - replies_before}
        res["rss"] = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
        client.close()
        anonymous.close()
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping every process started ...", flush=True)
    finally:
        # Each step on its own: one that fails must not leave the app, the database or the Redis claim behind.
        steps = [lambda: load is not None and load.is_alive() and load.stop(),
                 lambda: obs is not None and obs.close(),
                 lambda: "worker" in procs and stop(procs["worker"], signal.SIGINT),
                 lambda: "web" in procs and stop(procs["web"]),
                 lambda: stop_embedded_redis(data_dir),
                 lambda: cleanup is not None and not args.keep_db and cleanup(),
                 lambda: redis_scope is not None and redis_scope.release()]
        for step in steps:
            try:
                step()
            except Exception as exc:
                print(f"cleanup step failed: {type(exc).__name__}: {exc}", flush=True)
    if interrupted:
        print(f"interrupted; logs kept in {tmp}")
        return 130
    return report(args, res, logs, tmp)


def report(args, res: dict, logs: dict[str, Path], tmp: Path) -> int:
    calls: dict[str, Calls] = res["calls"]
    problems: list[str] = []
    for c in calls.values():
        expected = {401} if c.label.startswith(FLOOR) else {200}
        if set(c.codes) != expected and c.label != SEARCH:
            problems.append(f"{c.label}: status codes {dict(c.codes)} (e.g. {c.bad}); every call must be "
                            f"{expected.pop()}")
    for phase, changed in res["toggles"].items():
        if changed != args.calls:
            problems.append(f"toggle ({phase}): {changed} of {args.calls} calls changed the mode")
    busy, lt = res["busy"], res["load_total"]
    if set(lt["codes"]) - {200}:
        problems.append(f"load webhooks: status codes {lt['codes']} (e.g. {lt['errors']})")
    if busy["replies"] <= 0:
        problems.append("the responder wrote no reply while the toggle was measured: the worker was not busy")
    sse = res.get("sse")
    if sse is None:
        problems.append(f"events: the phase did not complete ({res.get('sse_error')})")
    else:
        if sse["fail"]:
            problems.append(f"events: {sse['fail'][:3]}")
        for run in ("busy", "quiet"):
            d = sse[run]
            pairs = d["inserted"] * sse["tabs"]
            if d["missing"] or d["inserted"] != args.events:
                problems.append(f"events ({run}): {pairs - d['missing']} of {pairs} (inserted events × tabs) "
                                f"delivered ({d['inserted']} of {args.events} inserted)")
        if sse["lost"]:
            problems.append(f"events: {len(sse['lost'])} of the agent's {sse['expected_all']} events since the tabs "
                            f"connected reached no tab at all (id, kind, conversation: {sse['lost'][:8]})")
        if sse["partly"]:
            problems.append(f"events: {len(sse['partly'])} events reached only some tabs (id, kind, tabs missing: "
                            f"{sse['partly'][:8]})")

    base_idle, base_busy = calls["/health (idle)"], calls["/health (busy)"]
    list_all = Calls("list: all variants")
    for c in calls.values():
        if c.label.startswith("list:") and c.label != SEARCH:
            list_all.ms.extend(c.ms)
            list_all.codes.update(c.codes)
            list_all.bytes += c.bytes
    table = {**calls, list_all.label: list_all}
    order = ["/health (idle)", FLOOR + " (idle)", *[c for c in calls if c.startswith("list:") and c != SEARCH],
             list_all.label, "thread", "toggle (idle)", SEARCH, "/health (busy)", FLOOR + " (busy)", "toggle (busy)"]
    print()
    head = (f"{'call':38s} {'n':>5s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'p95/health':>11s} "
            f"{'p99/health':>11s} {'avg KB':>7s}  {'server CPU':16s} status")
    print(head)
    print("-" * len(head))
    for label in order:
        c = table[label]
        base = base_busy if "busy" in label else base_idle
        print(f"{label:38s} {len(c.ms):5d} {c.p(0.5):8.2f} {c.p(0.95):8.2f} {c.p(0.99):8.2f} {max(c.ms):8.2f} "
              f"{c.p(0.95) / base.p(0.95):10.2f}× {c.p(0.99) / base.p(0.99):10.2f}× "
              f"{c.bytes / max(1, len(c.ms)) / 1024:7.1f}  "
              f"{' '.join(f'{v:.0%}' for v in c.cpu.values()) if c.cpu else '':16s} {dict(c.codes)}")
    print(f"(/health reads the migration files and counts the backlog; the floor, {FLOOR}, is routing and the "
          f"session check without a cookie: no database. server CPU: share of one CPU used meanwhile by "
          f"{' and '.join(res['rss'])}; the list variants ran interleaved, one figure for all)")
    buckets = [(0, 50), (51, 150), (151, 300), (301, 10**9)]
    print("thread p95 by the conversation's size: " + "; ".join(
        f"{lo}–{hi if hi < 10**9 else 'max'} messages " +
        (f"{pct(v, 0.95):.1f} ms (n={len(v)})" if (v := [ms for cid, ms in res["thread_ms"]
                                                       if lo <= res["sizes"][cid] <= hi]) else "-")
        for lo, hi in buckets))
    sc = calls.get(SEARCH)
    if sc is not None and set(sc.codes) != {200}:
        print(f"search (not a target, not a check): status {dict(sc.codes)}, e.g. {sc.bad}; the app log has why")

    print(f"\nbusy: the responder wrote {busy['replies']} replies to the load in the {busy['seconds']:.1f}s of "
          f"/health, floor and toggle (busy) ({busy['replies'] / busy['seconds']:.1f}/s; {busy['replies_warmup']} in "
          f"the {args.load_warmup:g}s warm-up) while {busy['webhooks']} webhooks came in; then {busy['backlog']}")
    print(f"load overall: {lt['webhooks']} webhooks in {lt['seconds']:.1f}s, status {lt['codes']}; "
          f"{lt['replies']} replies to them")
    if sse:
        print(f"\nevents: {sse['tabs']} tabs connected in {sse['connect_s']:.2f}s; the hub polls every 250 ms"
              + (f"; the event table was quiet {sse['drain_s']:.1f}s after the load stopped" if "drain_s" in sse
                 else ""))
        for run in ("busy", "quiet"):
            d = sse[run]
            pairs = d["inserted"] * sse["tabs"]
            if d["delays"]:
                v = d["delays"]
                print(f"  {run:5s}: {d['inserted']} inserted (commit median {d['commit_ms']:.1f} ms), delivered "
                      f"{pairs - d['missing']}/{pairs}; commit → frame p50 {statistics.median(v) * 1000:.0f} ms, "
                      f"p95 {pct(v, 0.95) * 1000:.0f} ms, p99 {pct(v, 0.99) * 1000:.0f} ms, max {max(v) * 1000:.0f} "
                      f"ms; worst tab's p95 {d['worst_tab_p95'] * 1000:.0f} ms; every tab had them "
                      f"{d['caught_up_s']:.1f}s after the last insert")
                print(f"         server {fmt_cpu(d['server_cpu'])}; client: {d['frames_per_s']:.0f} frames/s read, "
                      f"{d['client_cpu']:.0%} of a CPU, its event loop late by p95 {d['loop_lag_p95_ms']:.1f} ms / "
                      f"max {d['loop_lag_max_ms']:.0f} ms; loadavg {d['loadavg']:.1f}")
        print(f"  every event of the agent since the tabs connected ({sse['expected_all']}: {dict(sse['kinds'])}): "
              + ("all on every tab" if not sse["lost"] and not sse["partly"] else
                 f"{len(sse['lost'])} on no tab, {len(sse['partly'])} on only some"))
    for name, mb in res["rss"].items():
        if mb is not None:
            print(f"peak RSS {name} (VmHWM): {mb:.0f} MB")

    # --- targets
    list_variants = [c for label, c in calls.items() if label.startswith("list:") and label != SEARCH]
    worst_list = max(list_variants, key=lambda c: c.p(0.95))
    thread, toggle = calls["thread"], calls["toggle (busy)"]
    rows = [
        (f"list p95 <= {LIST_P95_MS:g} ms (each variant)",
         f"worst {worst_list.p(0.95):.1f} ms ({worst_list.label[6:]}), all {list_all.p(0.95):.1f} ms; "
         f"{worst_list.p(0.95) / base_idle.p(0.95):.2f}× /health", worst_list.p(0.95) <= LIST_P95_MS),
        (f"thread p95 <= {THREAD_P95_MS:g} ms", f"{thread.p(0.95):.1f} ms; {thread.p(0.95) / base_idle.p(0.95):.2f}× "
         f"/health", thread.p(0.95) <= THREAD_P95_MS),
        (f"toggle p99 <= {TOGGLE_P99_MS:g} ms, worker busy", f"{toggle.p(0.99):.1f} ms; "
         f"{toggle.p(0.99) / base_busy.p(0.99):.2f}× /health p99 (busy)", toggle.p(0.99) <= TOGGLE_P99_MS),
    ]
    for run in ("quiet", "busy"):
        v = sse[run]["delays"] if sse else []
        rows.append((f"SSE delivery p95 <= {SSE_P95_S:g} s, {args.tabs} tabs" + (", worker busy" if run == "busy"
                                                                                  else ""),
                     f"{pct(v, 0.95) * 1000:.0f} ms (max {max(v) * 1000:.0f} ms)" if v else "-",
                     bool(v) and pct(v, 0.95) <= SSE_P95_S))
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'target':{width}s}  {'measured':62s}  result")
    print("-" * (width + 74))
    for label, measured, ok in rows:
        print(f"{label:{width}s}  {measured:62s}  {'PASS' if ok else 'FAIL'}")

    logged = False
    for name, path in logs.items():
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        if text:
            logged = True
            print(f"\n{name} log ({path}), {len(text.splitlines())} lines, last ones:\n{tail(path, 12)}")
    if not logged and not problems:
        shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        print("\nCHECKS FAILED:")
        for p in problems:
            print(f"  - {p}")
        return 2
    print("\nchecks OK" + ("" if all(ok for _, _, ok in rows) else " (a target was missed: see FAIL above)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
