"""Model-written replies end to end: N customers over M Green API channels, webhook → worker → Claude → guards → send.

bench/pipeline.py with the model in the loop. Starts the real app (uvicorn, RUN_WORKER=true) on a
scratch database and Redis with one agent, the Nile Homes demo listings and M Green API channels
pointing at the fake Green API of bench/pipeline.py, and ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL
pointing at an in-process fake Claude (tests/fakes/anthropic_server.py: the real Messages API, the
real `anthropic` SDK in the app). The fake behaves like a good model with one tool round, each call
answered after --model-latency seconds (2.0; the wait is per request thread, never serialised):
  1st call  → tool_use search_properties {"query": the customer's text}
  2nd call (it carries the tool_result) → a draft in the customer's language built only from the
              first listing found (project, reference, district, bedrooms, the price exactly as the
              tool gave it), so the grounding guard passes; no listing → a short reply with no figures.
Customer n writes one first message on channel n % M, a realistic request (English, Arabic, Arabizi,
rotating over MESSAGES; none that the escalation rules hand to the agent, checked before the run),
the N webhooks spread evenly over --spread seconds (5 s: 100/s, the pacing limit of 100 numbers).

Printed: the command line; sustained replies/s (the middle 95 % of the first replies over the time
they took to go out: the rate the app keeps up, the offered load when it keeps up) and, beside it,
first webhook → last reply (which also counts the first reply's unavoidable 2 × model latency + burst
window); webhook → first send p50 / p95 / max; the targets p95 ≤ 2 × model latency + burst window +
1 s and sustained replies/s ≥ 50 (a miss
is printed, it does not fail the run); the share of first replies written by the model with the
guard passed (messages.generation: backend 'claude', guard 'passed'), with the other outcomes and
examples when there are any; the model calls the fake received (2 per customer expected); where the
time goes, per phase, from the database's timestamps (PostgreSQL now(): when each transaction began)
and the fake's (intake, event worker, burst window and claim, generation with its tool round, pacing,
provider call); the app's queues sampled every 0.5 s from its database (events not applied, replies in
the burst window / due / claimed, sends, database connections); the CPU time each process (and the
app's PostgreSQL backends) used during the load, per reply; the load average (the machine may be
shared); peak RSS (VmHWM) of each process.
Checked as bench/pipeline.py does: every webhook 200 and stored, exactly one reply per customer on
its own channel, no duplicate, no send below the channel's interval; plus at least --min-model-share
(0.99) of the first replies written by the model with the guard passed. Problems make the exit
status non-zero (timed out: 1, wrong: 2).

Before the run, a preflight fires --preflight-calls (300) concurrent SDK calls at a second fake with
the same latency and prints how long they took (all should take ≈ the latency). Both fakes listen
with a backlog of 1024: the standard library's default of 5 resets a burst of new connections (the
SDK opens one per reply thread), which would be the fake's limit, not the app's; the fake Claude
keeps connections alive (HTTP/1.1) as the real API does, and counts the connections it accepted.

One warm-up customer is answered before the clock starts (the process's first use of the sentence
encoder, its example index and the SDK client; --no-warmup measures a cold process). --profile loads
a sampling profiler into the app's processes and prints where each thread pool spent the load (the
sampling costs CPU: such a run's figures are not comparable). OPENBLAS_NUM_THREADS / OMP_NUM_THREADS /
MKL_NUM_THREADS set for the bench are passed to the app and shown in the command line.

usage: python bench/generation.py [--chats 500] [--channels 100] [--spread 5] [--processes 1|2] [--workers 0-4]
         [--model-latency 2.0] [--reply-workers 512] [--db-pool-max 40] [--max-retries 0] [--redis-db 13]
         [--no-warmup] [--profile]
Uses BENCH_DATABASE_URL / BENCH_REDIS_URL as bench/pipeline.py does (Redis database index --redis-db,
13 by default, checked empty of foreign keys and cleared before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import (START_ATTEMPTS, START_RETRY_WAIT_S, FakeGreenApiFleet, RedisScope,  # noqa: E402
                            api_token, build_requests, chat_id, db_summary, fmt_s, instance, peak_rss_mb, pct,
                            post_all, seed, stop, stop_embedded_redis)
from bench.scratch import scratch_database  # noqa: E402
from bench.webhook_ack import APP_SECRET_KEY, command_line, free_port, tail, wait_port  # noqa: E402
from tests.fakes import anthropic_server as A  # noqa: E402

API_KEY = "bench-key"
SHOWN_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")   # passed on to the app; they change it
LISTEN_BACKLOG = 1024
TESTS_REDIS_CLAIM = "pytest:run"   # tests/conftest.py claims a free Redis database index with it, then flushes it
TARGET_RPS = 50.0

# --profile: a sampling profiler the app's processes load at start-up (as sitecustomize, from a directory put
# first on their PYTHONPATH). Every 50 ms it records, for each thread, its pool (thread name without the
# number), the innermost frame of the project's own code and the innermost frame of all: where each thread
# is, running or waiting. Written to BENCH_PROFILE_OUT every few seconds and at exit.
PROFILER = r"""
import atexit, collections, faulthandler, gc, json, os, re, signal, sys, threading

_out = os.environ.get("BENCH_PROFILE_OUT")
if _out:
    _stacks = open(_out + ".stacks", "w")
    faulthandler.register(signal.SIGUSR1, file=_stacks, all_threads=True)   # kill -USR1: every thread's stack
    _root = os.environ.get("BENCH_PROFILE_ROOT", "/") .rstrip("/") + "/"
    _counts = collections.Counter()
    _lock = threading.Lock()
    _stop = threading.Event()

    def _leaf(frame):
        return f"{os.path.basename(os.path.dirname(frame.f_code.co_filename))}/" \
               f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"

    def _own(frame):
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(_root) and "/.venv/" not in name:
                return f"{name[len(_root):]}:{frame.f_code.co_name}"
            frame = frame.f_back
        return "(no project frame)"

    def _dump():
        with _lock:
            rows = [[*k, v] for k, v in _counts.items()]
        with open(_out + ".tmp", "w") as fh:
            json.dump(rows, fh)
        os.replace(_out + ".tmp", _out)

    def _sample():
        me, n = threading.get_ident(), 0
        while not _stop.wait(0.05):
            names = {t.ident: t.name for t in threading.enumerate()}
            seen = collections.Counter()
            # CPython 3.11 before 3.11.9 can deadlock when a collection runs inside sys._current_frames()
            # (gh-106883): the collector is held off around the call, as the fix does.
            enabled = gc.isenabled()
            gc.disable()
            try:
                frames = sys._current_frames()
            finally:
                if enabled:
                    gc.enable()
            for ident, frame in frames.items():
                if ident != me:
                    pool = re.split(r"[_:]|-\d|\s", names.get(ident, "?"), maxsplit=1)[0]
                    seen[(pool, _own(frame), _leaf(frame))] += 1
            with _lock:
                _counts.update(seen)
            n += 1
            if n % 60 == 0:
                _dump()

    def _reset(*_):   # kill -USR2: start counting again (the bench sends it when the load starts)
        with _lock:
            _counts.clear()

    signal.signal(signal.SIGUSR2, _reset)
    threading.Thread(target=_sample, name="bench-profiler", daemon=True).start()
    atexit.register(lambda: (_stop.set(), _dump()))
"""

# Ordinary property requests for the demo listings (execution/demo_data/listings_nile_homes.csv): nothing
# the escalation rules hand to the agent (discounts, a person, contracts, financing, furnishing).
MESSAGES = (
    "Hi, I'm looking for a 3 bedroom apartment in Maadi, budget around 8 million",
    "عايز شقة ٣ غرف في المعادي في حدود ٨ مليون",
    "3ayez sha2a 3 owad fel maadi fe 7dod 8 million",
    "Do you have a 2 bedroom apartment for rent in New Cairo?",
    "محتاج شقة إيجار في التجمع غرفتين",
    "3ayza sha2a egar fel tagamo3 2 owad",
    "Looking for a duplex in Sheikh Zayed with a private garden",
    "عندكم دوبلكس في الشيخ زايد؟",
    "3andoko duplex fel sheikh zayed?",
    "Any chalets on the North Coast? 3 bedrooms ideally",
    "بدور على شاليه في الساحل الشمالي ٣ غرف",
    "ana badawar 3ala chalet fel sa7el 3 owad",
    "I want a 4 bedroom apartment in Heliopolis under 13 million",
    "عايزة شقة في مصر الجديدة ٤ غرف",
    "3ayez sha2a f masr el gedida ta7t 10 million",
    "Do you have a duplex in Zamalek, 4 bedrooms?",
    "في شقق في العاصمة الإدارية في حدود ٧ مليون؟",
    "fi duplex fel zamalek 4 owad?",
)
NOTHING_FOUND = {   # no figures: nothing for the guard to refuse
    "en": "Thanks for your message! Which area and what kind of home would suit you best?",
    "ar": "شكرا لرسالتك! تحب تسكن في أنهي منطقة وأي نوع شقة؟",
    "arabizi": "Shokran 3ala resaltak! Te7eb teskon fe anhy mante2a?",
}


def draft(listing: dict, language: str) -> str:
    """What a good model writes from a search result: the first listing's facts exactly as the tool gave them."""
    project, ref, price, beds = listing["project"], listing["reference"], listing["price"], listing.get("bedrooms")
    if language == "ar":
        rooms = f"{beds} غرف، " if beds else ""
        return f"لقيتلك *{project}* ({ref}) في {listing.get('district_ar') or listing['district']}: {rooms}بسعر {price}. " \
               f"تحب تعرف تفاصيل أكتر؟"
    if language == "arabizi":
        rooms = f"{beds} owad, " if beds else ""
        return f"3andena *{project}* ({ref}) fel {listing['district']}: {rooms}b {price}. Te7eb te3raf aktar?"
    rooms = f"{beds} bedroom{'s' if beds != 1 else ''} " if beds else ""
    return f"I found *{project}* ({ref}) in {listing['district']}: {rooms}for {price}. Want details?"


class GoodModel:
    """FakeAnthropic's responder: one search_properties round, then a grounded draft; every answer after latency_s.

    Records, per reply, the gap between its first answer leaving and its second call arriving: the
    app's tool round (SDK parsing, the listing search, the next request).
    """

    def __init__(self, latency_s: float) -> None:
        from execution.lib.criteria import detect_language

        self.latency_s = latency_s
        self.detect_language = detect_language
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._searched: dict[str, float] = {}     # tool_use id -> when its answer was due (wall clock)
        self.tool_rounds: list[float] = []          # s from the tool_use answer to the call with its result
        self.drafts: Counter = Counter()           # language / "nothing found" / "tool error"
        self.unmatched: Counter = Counter()        # the queries a search found nothing for

    def reset(self) -> None:
        with self._lock:
            self.tool_rounds.clear()
            self.drafts.clear()
            self.unmatched.clear()

    def __call__(self, body: dict):
        arrived = time.time()
        messages = body.get("messages") or []
        said = next((m["content"] for m in reversed(messages) if m.get("role") == "user"
                     and isinstance(m.get("content"), str)), "")
        language = self.detect_language(said)
        results = [b for m in messages if m.get("role") == "user" and isinstance(m.get("content"), list)
                   for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if not results:
            call_id = f"toolu_bench{next(self._ids):010d}"
            with self._lock:
                self._searched[call_id] = arrived + self.latency_s
            return A.slow(self.latency_s, A.tool_use("search_properties", {"query": said[:200]}, id=call_id))
        last = results[-1]
        with self._lock:
            due = self._searched.pop(last.get("tool_use_id"), None)
            if due is not None:
                self.tool_rounds.append(arrived - due)
        content = last.get("content")
        if isinstance(content, list):   # the SDK may send the result as text blocks
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        try:
            listings = json.loads(content or "{}").get("listings") or []
        except (ValueError, AttributeError):
            listings = []
        with self._lock:
            self.drafts[language if listings else "nothing found" if not last.get("is_error") else "tool error"] += 1
            if not listings:
                self.unmatched[said] += 1
        text = draft(listings[0], language) if listings else NOTHING_FOUND[language]
        return A.slow(self.latency_s, A.text(text))


def warm_up(port: int, request: bytes, chat: str, green: FakeGreenApiFleet, procs: dict, *, timeout_s: float) -> float:
    """Post one customer's message and wait until it is answered: the process's first-use costs are paid."""
    started = time.monotonic()
    _, codes, _ = asyncio.run(post_all(port, [request], spread_s=0, concurrency=1))
    if codes != [200]:
        raise SystemExit(f"the warm-up webhook was answered {codes[0]}")
    while not any(s[3] == chat and s[4] == 200 for s in green.snapshot()):
        dead = [f"{name} exited with {p.returncode}" for name, p in procs.items() if p.poll() is not None]
        if dead or time.monotonic() - started > timeout_s:
            raise SystemExit(f"the warm-up customer was not answered: {dead or f'{timeout_s:g}s passed'}")
        time.sleep(0.1)
    return time.monotonic() - started


def widen_backlog(fake) -> None:
    """Let a fake's ThreadingHTTPServer queue a burst of new connections (the default backlog is 5)."""
    fake._server.socket.listen(LISTEN_BACKLOG)


class ConnectionCount:
    """Counts the TCP connections a fake's server accepts (the SDK's pool keeps at most 100 alive by default)."""

    def __init__(self, fake) -> None:
        self.n = 0
        self._lock = threading.Lock()
        server, accept = fake._server, fake._server.process_request

        def process_request(request, client_address):
            with self._lock:
                self.n += 1
            return accept(request, client_address)

        server.process_request = process_request


def fake_claude(latency_s: float, responder=None) -> A.FakeAnthropic:
    fake = A.FakeAnthropic(api_key=API_KEY, responder=responder or GoodModel(latency_s))
    widen_backlog(fake)
    # Keep-alive, as the real API: BaseHTTPRequestHandler speaks HTTP/1.0 and closes after every answer.
    fake._server.RequestHandlerClass.protocol_version = "HTTP/1.1"
    fake.connections = ConnectionCount(fake)
    return fake.start()


def preflight(latency_s: float, calls: int) -> dict:
    """`calls` concurrent SDK calls at a fresh fake with the same latency: how long each took."""
    import anthropic

    fake = fake_claude(latency_s, responder=lambda body: A.slow(latency_s, A.text("ok")))
    client = anthropic.Anthropic(api_key=API_KEY, base_url=fake.url, max_retries=0, timeout=30)
    took: list[float] = []
    errors: Counter = Counter()
    lock = threading.Lock()

    def one() -> None:
        t = time.monotonic()
        try:
            client.messages.create(model="bench", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        except anthropic.APIError as exc:
            with lock:
                errors[type(exc).__name__] += 1
            return
        with lock:
            took.append(time.monotonic() - t)

    threads = [threading.Thread(target=one) for _ in range(calls)]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        client.close()
        fake.stop()
    return {"calls": calls, "ok": len(took), "errors": dict(errors), "wall": time.monotonic() - started,
            "p50": statistics.median(took) if took else None, "max": max(took) if took else None}


def with_texts(requests: list[bytes], texts: list[str]) -> list[bytes]:
    """bench/pipeline.py's webhook requests with customer n's text set to texts[n]."""
    out = []
    for raw, text in zip(requests, texts):
        head, _, body = raw.partition(b"\r\n\r\n")
        payload = json.loads(body)
        payload["messageData"]["textMessageData"]["textMessage"] = text
        body = json.dumps(payload, ensure_ascii=False).encode()
        head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head)
        out.append(head + b"\r\n\r\n" + body)
    return out


def escalating(texts) -> list[tuple[str, str]]:
    """The messages the escalation rules would hand to the agent before any model is asked (rule, text)."""
    from execution.check_escalation import check_escalation
    from execution.lib.directives import load_directives

    directive = load_directives()["escalation_triggers"]
    out = []
    for text in texts:
        decision = check_escalation(text, directive=directive, agent_name="Bench Agent", agent_gender=None)
        if decision.escalate:
            out.append((decision.rule, text))
    return out


# --- after the run: the database's account ------------------------------------------------------------

FIRST_REPLIES_SQL = """
SELECT c.chat_id, cm.body AS said,
       extract(epoch FROM we.received_at)::float8 AS received,
       extract(epoch FROM we.processed_at)::float8 AS applied,
       m.body AS reply, m.generation,
       extract(epoch FROM o.created_at)::float8 AS fenced,
       extract(epoch FROM o.call_started_at)::float8 AS calling,
       extract(epoch FROM o.sent_at)::float8 AS sent
  FROM conversations c
  LEFT JOIN LATERAL (SELECT body, webhook_event_id FROM messages
                      WHERE conversation_id = c.id AND author = 'customer' ORDER BY id LIMIT 1) cm ON true
  LEFT JOIN webhook_events we ON we.id = cm.webhook_event_id
  LEFT JOIN LATERAL (SELECT body, generation, outbox_id FROM messages
                      WHERE conversation_id = c.id AND author = 'ai' ORDER BY id LIMIT 1) m ON true
  LEFT JOIN outbox o ON o.id = m.outbox_id
"""


QUEUES_SQL = """
SELECT (SELECT count(*) FROM webhook_events WHERE status IN ('pending', 'processing')) AS events,
       count(*) FILTER (WHERE reply_due_at > now()) AS burst,
       count(*) FILTER (WHERE reply_due_at <= now() AND (reply_claim_until IS NULL OR reply_claim_until < now()))
           AS due,
       count(*) FILTER (WHERE reply_due_at IS NOT NULL AND reply_claim_until >= now()) AS claimed,
       (SELECT count(*) FROM outbox WHERE status = 'sent') AS sent,
       (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid())
           AS db_conns,
       (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND state <> 'idle') AS db_busy
  FROM conversations
"""
QUEUE_COLUMNS = ("events", "burst", "due", "claimed", "sent", "db_conns", "db_busy")


class QueueSampler:
    """Samples the app's queues every `every_s` from its database: where the customers are waiting.

    events: webhooks stored, not applied (the event worker); burst: inside the burst window; due: due and
    not claimed (the responder has no free thread, or has not looked yet); claimed: being answered (lock,
    escalation check, model, send); sent: replies sent; db_conns / db_busy: the app's connections, and
    those in a query or transaction (pool size per process: DB_POOL_MAX).
    """

    def __init__(self, dsn: str, every_s: float = 0.5) -> None:
        self.dsn, self.every_s = dsn, every_s
        self.rows: list[tuple[float, dict]] = []
        self.backend_pid: int | None = None       # its own PostgreSQL backend, left out of the app's CPU
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-sampler", daemon=True)

    def start(self) -> "QueueSampler":
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from execution.lib.db import connect

        while not self._stop.is_set():
            try:
                conn = connect(self.dsn)
                break
            except Exception:   # e.g. max_connections reached for a moment
                self._stop.wait(self.every_s)
        else:
            return
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid() AS pid")
                self.backend_pid = cur.fetchone()["pid"]
            self._ready.set()
            while not self._stop.is_set():
                t = time.monotonic()
                try:
                    with conn.cursor() as cur:
                        cur.execute(QUEUES_SQL)
                        self.rows.append((t, dict(cur.fetchone())))
                except Exception:   # a sample lost is not a result lost
                    pass
                self._stop.wait(max(0.0, self.every_s - (time.monotonic() - t)))
        finally:
            conn.close()

    def report(self, t0: float, lines: int = 16) -> str:
        if not self.rows:
            return "(no samples)"
        step = max(1, math.ceil(len(self.rows) / lines))
        head = f"{'t (s)':>7}" + "".join(f"{c:>10}" for c in QUEUE_COLUMNS)
        out = [head]
        for t, row in self.rows[::step]:
            out.append(f"{t - t0:7.1f}" + "".join(f"{row[c]:>10}" for c in QUEUE_COLUMNS))
        out.append(f"{'max':>7}" + "".join(f"{max(r[c] for _, r in self.rows):>10}" for c in QUEUE_COLUMNS))
        return "\n".join(out)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far (/proc/<pid>/stat), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def backend_cpu(dsn: str, *, besides: int | None = None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the scratch database (a server on this machine)."""
    from execution.lib.db import connect
    from execution.lib.errors import DatabaseUnavailable

    try:
        c = connect(dsn)
    except DatabaseUnavailable:   # e.g. max_connections reached: the figure is left out, the run goes on
        return {}
    try:
        with c.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            pids = [r["pid"] for r in cur.fetchall()]
    finally:
        c.close()
    return {pid: cpu for pid in pids if pid != besides and (cpu := cpu_seconds(pid)) is not None}


def sustained_rps(send_times: list[float], middle: float = 0.95) -> float:
    """Replies per second while replies were going out: the middle `middle` of the send times over their span.

    The first replies cannot leave before the model has been called twice and the burst window has
    closed, so counting from the first webhook measures that latency again, not the rate; the edges
    are dropped so that one early or late reply does not set the span.
    """
    times = sorted(send_times)
    if len(times) < 3:
        return 0.0
    cut = int(len(times) * (1 - middle) / 2)
    kept = times[cut:len(times) - cut]
    span = kept[-1] - kept[0]
    return (len(kept) - 1) / span if span > 0 else 0.0


def profile_report(paths: dict[str, Path], top: int = 12) -> str:
    """Where each pool's threads were, by share of samples: the project's own frame, then the innermost one."""
    out = []
    for proc, path in paths.items():
        try:
            rows = json.loads(path.read_text())
        except (OSError, ValueError):
            out.append(f"{proc}: no profile written")
            continue
        pools: dict[str, Counter] = defaultdict(Counter)
        idle: Counter = Counter()
        for pool, own, leaf, n in rows:
            if leaf.endswith("futures/thread.py:_worker"):   # a pool thread with no task
                idle[pool] += n
            else:
                pools[pool][(own, leaf)] += n
        for pool, counts in sorted(pools.items(), key=lambda kv: -sum(kv[1].values())):
            total = sum(counts.values())
            if pool in ("bench", "MainThread") or total < 20:
                continue
            out.append(f"{proc} · threads '{pool}': {total} busy thread-samples"
                       + (f" (and {idle[pool]} idle)" if idle[pool] else "") + ":")
            for (own, leaf), n in counts.most_common(top):
                out.append(f"  {n / total:6.1%}  {own}  ←  {leaf}")
    return "\n".join(out)


def first_replies(dsn: str) -> dict[str, dict]:
    """Per chat: the customer's first message, its webhook's timestamps, the first AI message and its send."""
    from execution.lib.db import connect

    c = connect(dsn)
    try:
        with c.cursor() as cur:
            cur.execute(FIRST_REPLIES_SQL)
            return {r["chat_id"]: dict(r) for r in cur.fetchall()}
    finally:
        c.close()


def outcome_of(row: dict) -> str:
    gen = row.get("generation") or {}
    if row.get("reply") is None and not gen:
        return "no AI message"
    parts = [f"backend={gen.get('backend')}", f"guard={gen.get('guard')}"]
    if gen.get("fallback_from"):
        parts.append(f"fallback_from={gen['fallback_from']}")
    if gen.get("model_error"):
        parts.append(f"model_error={gen['model_error']}")
    if gen.get("guard_reasons"):
        parts.append(f"reasons={','.join(gen['guard_reasons'])}")
    return " ".join(parts)


def phases(rows: dict[str, dict], posted_wall: dict[str, float], first_send_wall: dict[str, float],
           latency_s: float, burst_s: float) -> list[tuple[str, list[float]]]:
    """Seconds per phase for each answered customer, from the wall clocks of this machine (bench, PostgreSQL).

    Generation's start is taken as the outbox row's time minus messages.generation.latency_ms, so the
    phase before it also holds what runs between the end of model_reply and the fence (model_ok's write).
    """
    names = ("webhook → stored (HTTP intake)", "stored → applied (event worker)",
             "applied → generation starts (burst window, claim, pool, lock, load, escalation check)",
             f"  of which beyond the {burst_s:g} s burst window",
             "generation (2 model calls, tool round, guard)",
             f"  of which beyond 2 × {latency_s:g} s model latency",
             "outbox written → provider call (pacing)", "provider call → sent recorded",
             "webhook → first send (total)")
    out: dict[str, list[float]] = defaultdict(list)
    for chat, r in rows.items():
        gen = r.get("generation") or {}
        if chat not in posted_wall or chat not in first_send_wall or gen.get("latency_ms") is None:
            continue
        gen_s = gen["latency_ms"] / 1000
        ts = {k: r.get(k) for k in ("received", "applied", "fenced", "calling", "sent")}
        values = [None] * len(names)
        if ts["received"] is not None:
            values[0] = ts["received"] - posted_wall[chat]
        if None not in (ts["received"], ts["applied"]):
            values[1] = ts["applied"] - ts["received"]
        if None not in (ts["applied"], ts["fenced"]):
            values[2] = ts["fenced"] - gen_s - ts["applied"]
            values[3] = values[2] - burst_s
        values[4], values[5] = gen_s, gen_s - 2 * latency_s
        if None not in (ts["fenced"], ts["calling"]):
            values[6] = ts["calling"] - ts["fenced"]
        if None not in (ts["calling"], ts["sent"]):
            values[7] = ts["sent"] - ts["calling"]
        values[8] = first_send_wall[chat] - posted_wall[chat]
        for name, v in zip(names, values):
            if v is not None:
                out[name].append(v)
    return [(name, out[name]) for name in names if out[name]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chats", type=int, default=500, help="customers, one first message each")
    ap.add_argument("--channels", type=int, default=100, help="Green API channels of the one agent")
    ap.add_argument("--processes", type=int, choices=(1, 2), default=1,
                    help="2: plus one `python -m execution.worker` on the same database and Redis")
    ap.add_argument("--workers", type=int, choices=(0, 1, 2, 3, 4), default=0,
                    help="the production layout: the web process only takes webhooks (RUN_WORKER=false) and this "
                         "many `python -m execution.worker` processes answer (0: the web process answers too)")
    ap.add_argument("--spread", type=float, default=5.0, help="seconds over which the first messages arrive")
    ap.add_argument("--model-latency", type=float, default=2.0, help="seconds the fake Claude takes per call")
    ap.add_argument("--reply-workers", type=int, default=512, help="REPLY_WORKERS for the app (per process)")
    ap.add_argument("--db-pool-max", type=int, default=40, help="DB_POOL_MAX for the app (per process)")
    ap.add_argument("--max-retries", type=int, default=0,
                    help="ANTHROPIC_MAX_RETRIES (0: a failed call shows as an offline fallback, not as a retry)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds from the first webhook to give up")
    ap.add_argument("--concurrency", type=int, default=64, help="HTTP connections posting the webhooks")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the last reply for duplicates")
    ap.add_argument("--gap-tolerance-ms", type=float, default=10.0,
                    help="timing jitter allowed below the interval before a gap counts as a pacing violation")
    ap.add_argument("--min-model-share", type=float, default=0.99,
                    help="first replies that must be model-written with the guard passed")
    ap.add_argument("--preflight-calls", type=int, default=300, help="concurrent calls of the fake's check (0: skip)")
    ap.add_argument("--profile", action="store_true",
                    help="sample the app's threads every 50 ms and print where each pool spends its time "
                         "(the sampling costs the app some CPU: the run's figures are then not comparable)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="measure a cold process: no warm-up customer answered before the clock starts")
    ap.add_argument("--redis-db", type=int, default=13, help="Redis database index used with BENCH_REDIS_URL")
    args = ap.parse_args()
    if args.chats < 1 or args.channels < 1:
        ap.error("--chats and --channels must be at least 1")
    if args.workers and args.processes != 1:
        ap.error("--workers (web + workers) and --processes 2 (web answering + one worker) are different layouts")

    from execution.lib.directives import load_directives

    sending = load_directives()["message_sending_rules"]
    interval_ms = int(sending["send_interval_ms"].get("green_api", sending["default_send_interval_ms"]))
    burst_s = float(sending["burst_window_s"])
    limit_rps = args.channels * 1000 / interval_ms if interval_ms > 0 else float("inf")
    target_p95 = 2 * args.model_latency + burst_s + 1
    texts = [MESSAGES[n % len(MESSAGES)] for n in range(args.chats)]

    shown_env = " ".join(f"{k}={os.environ[k]}" for k in SHOWN_ENV if k in os.environ)
    print(f"command: {command_line().replace(' && ', f' && {shown_env} ', 1) if shown_env else command_line()}")
    layout = (f"web (RUN_WORKER=false) + {args.workers} worker process{'es' if args.workers > 1 else ''}"
              if args.workers else f"{args.processes} process{'es' if args.processes > 1 else ''}, web answering")
    print(f"options: chats={args.chats} channels={args.channels} layout: {layout} spread={args.spread:g}s "
          f"model latency={args.model_latency:g}s REPLY_WORKERS={args.reply_workers} DB_POOL_MAX={args.db_pool_max} "
          f"ANTHROPIC_MAX_RETRIES={args.max_retries} concurrency={args.concurrency} cpus={os.cpu_count()}")
    print(f"directives: send_interval_ms.green_api={interval_ms} burst_window_s={burst_s:g} → pacing limit "
          f"{limit_rps:g} replies/s; {len(MESSAGES)} request texts in rotation", flush=True)
    escalate = escalating(MESSAGES)
    if escalate:
        print(f"these request texts would be escalated before the model is asked; change them: {escalate}")
        return 2
    if args.preflight_calls > 0:
        pf = preflight(args.model_latency, args.preflight_calls)
        print(f"preflight: {pf['ok']}/{pf['calls']} concurrent calls to the fake answered, each in "
              f"p50 {fmt_s(pf['p50'])} max {fmt_s(pf['max'])} (latency {args.model_latency:g}s), all in "
              f"{pf['wall']:.2f}s" + (f"; errors {pf['errors']}" if pf["errors"] else ""), flush=True)
        if pf["errors"] or pf["max"] is None or pf["max"] > args.model_latency + 2:
            print("the fake Claude does not answer concurrent calls in about its latency: its figures would be "
                  "the fake's, not the app's")
            return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    data_dir = tmp / "data"
    green = FakeGreenApiFleet({instance(i): api_token(i) for i in range(args.channels)})
    widen_backlog(green)
    green.start()
    model = GoodModel(args.model_latency)
    claude = fake_claude(args.model_latency, model)
    procs: dict[str, subprocess.Popen] = {}
    workers = ["worker"] if args.processes == 2 else [f"worker{i}" for i in range(1, args.workers + 1)]
    logs = {name: tmp / f"{name}.log" for name in ["web", *workers]}
    redis_scope: RedisScope | None = None
    sampler: QueueSampler | None = None
    cleanup = None
    interrupted = False

    def on_term(signum, frame):
        raise KeyboardInterrupt

    def profiled(env: dict, path: Path) -> dict:
        return {**env, "BENCH_PROFILE_OUT": str(path)} if args.profile else env

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    res: dict = {}
    try:
        env = {**os.environ, "APP_ENV": "test", "RUN_WORKER": "true", "LOG_LEVEL": "WARNING",
               "APP_SECRET_KEY": APP_SECRET_KEY, "DATA_DIR": str(data_dir), "LLM_BACKEND": "claude",
               "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": claude.url,
               "ANTHROPIC_MAX_RETRIES": str(args.max_retries), "ANTHROPIC_TIMEOUT_S": "30",
               "REPLY_WORKERS": str(args.reply_workers), "DB_POOL_MAX": str(args.db_pool_max)}
        env.pop("REDIS_URL", None)
        profiles = {name: tmp / f"profile-{name}.json" for name in ["web", *workers]}
        if args.profile:
            (tmp / "profiler").mkdir()
            (tmp / "profiler" / "sitecustomize.py").write_text(PROFILER)
            env["PYTHONPATH"] = os.pathsep.join([str(tmp / "profiler"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            env["BENCH_PROFILE_ROOT"] = str(ROOT)
        if os.environ.get("BENCH_REDIS_URL"):
            redis_scope = RedisScope(os.environ["BENCH_REDIS_URL"], args.redis_db)
            redis_scope.claim(ttl_s=int(args.timeout) + 900)
            # Keep test runs out of this database index while the bench uses it (they flush what they claim).
            if not redis_scope.client.set(TESTS_REDIS_CLAIM, redis_scope.token, nx=True, ex=int(args.timeout) + 900):
                raise SystemExit(f"Redis db {args.redis_db} is claimed by a test run ({TESTS_REDIS_CLAIM}); "
                                 f"choose another --redis-db")
            env["REDIS_URL"] = redis_scope.url

        port = free_port()
        for attempt in range(1, START_ATTEMPTS + 1):
            # Others edit the code while benches run: a start that fails (migrations, seeding, start-up) is retried.
            try:
                dsn, cleanup = scratch_database(tmp)
                seed(dsn, channels=args.channels, api_url=green.url)
                env["DATABASE_URL"] = dsn
                web_env = {**env, "RUN_WORKER": "false"} if args.workers else env
                with open(logs["web"], "ab") as out:
                    procs["web"] = subprocess.Popen(
                        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                         "--no-access-log", "--log-level", "warning", "main:app"],
                        cwd=ROOT, env=profiled(web_env, profiles["web"]), stdout=out, stderr=subprocess.STDOUT)
                wait_port(port, procs["web"], logs["web"])
                for name in workers:
                    with open(logs[name], "ab") as out:
                        procs[name] = subprocess.Popen([sys.executable, "-m", "execution.worker"], cwd=ROOT,
                                                       env=profiled(env, profiles[name]), stdout=out,
                                                       stderr=subprocess.STDOUT)
                if workers:
                    time.sleep(2 + 2 * len(workers))   # their start-up (imports, pool, directives) before the load
                for name in workers:
                    if procs[name].poll() is not None:
                        raise SystemExit(f"{name} exited with {procs[name].returncode}; its log "
                                         f"({logs[name]}):\n{tail(logs[name])}")
                break
            except (SystemExit, Exception) as exc:
                for name in [*workers, "web"]:
                    if name in procs:
                        stop(procs.pop(name))
                if cleanup is not None:
                    cleanup()
                    cleanup = None
                if attempt == START_ATTEMPTS:
                    raise
                print(f"start failed (attempt {attempt}/{START_ATTEMPTS}); retrying in {START_RETRY_WAIT_S}s: "
                      f"{type(exc).__name__}: {exc}", flush=True)
                time.sleep(START_RETRY_WAIT_S)

        # One more customer than measured: the last is the warm-up (answered before the clock starts).
        requests = with_texts(build_requests(args.chats + 1, args.channels), texts + [MESSAGES[0]])
        warm_chat, warm_request = chat_id(args.chats), requests.pop()
        expected = {chat_id(n): n for n in range(args.chats)}
        if not args.no_warmup:
            took = warm_up(port, warm_request, warm_chat, green, procs, timeout_s=args.timeout)
            model.reset()
            print(f"warm-up customer answered in {took:.1f}s (first use of the process: encoder, example index, "
                  f"SDK client)", flush=True)
        calls_before, connections_before = len(claude.requests), claude.connections.n
        sampler = QueueSampler(dsn).start()
        pids = {**{name: p.pid for name, p in procs.items()}, "bench (fakes, load)": os.getpid()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        pg_before = backend_cpu(dsn, besides=sampler.backend_pid)
        if args.profile:   # the profiles start here: what came before (start-up, warm-up) is dropped
            for p in procs.values():
                p.send_signal(signal.SIGUSR2)
        load_before = os.getloadavg()
        print(f"posting {args.chats} first messages over {args.spread:g}s ...", flush=True)
        wall_offset = time.time() - time.monotonic()
        sent_at, codes, outcomes = asyncio.run(post_all(port, requests, spread_s=args.spread,
                                                        concurrency=args.concurrency))
        t_first = min(sent_at)
        posted_in = max(sent_at) - t_first
        print(f"posted in {posted_in:.2f}s: status {dict(Counter(codes))}, outcome {dict(Counter(outcomes))}",
              flush=True)

        awaited = {chat_id(n) for n in range(args.chats) if codes[n] == 200}
        deadline = t_first + args.timeout
        last_report = time.monotonic()
        answered: set[str] = set()
        died = None
        while awaited and time.monotonic() < deadline:
            answered = {s[3] for s in green.snapshot() if s[3] in awaited and s[4] == 200}
            if len(answered) >= len(awaited):
                break
            for name, p in procs.items():
                if p.poll() is not None:
                    died = f"{name} process exited with {p.returncode}"
            if died:
                break
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(f"  {time.monotonic() - t_first:6.1f}s: {len(answered)}/{args.chats} customers answered, "
                      f"{len(claude.requests)} model calls", flush=True)
            time.sleep(0.1)
        timed_out = len(answered) < len(awaited)
        res["load"] = (load_before, os.getloadavg())
        res["cpu"] = {name: (after - cpu_before[name]) if None not in (after, cpu_before[name]) else None
                      for name, after in ((name, cpu_seconds(pid)) for name, pid in pids.items())}
        pg_after = backend_cpu(dsn, besides=sampler.backend_pid)   # a backend that is gone by now is not counted; the pool keeps them
        if pg_after:
            res["cpu"]["postgres backends"] = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
        if not died and awaited:
            time.sleep(args.settle)
        sampler.stop()
        res["rss"] = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
        res["db"] = db_summary(dsn)
        res["replies"] = first_replies(dsn)
        sends = green.snapshot()
        model_calls = claude.calls()[calls_before:]
        model_connections = claude.connections.n - connections_before
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping every process started ...", flush=True)
    finally:
        for name in workers:
            if name in procs:
                stop(procs[name], signal.SIGINT)
        if "web" in procs:
            stop(procs["web"])
        if sampler is not None:
            sampler.stop()
        stop_embedded_redis(data_dir)
        green.stop()
        claude.stop()
        if cleanup is not None:
            cleanup()
        if redis_scope is not None:
            if redis_scope.client.get(TESTS_REDIS_CLAIM) == redis_scope.token.encode():
                redis_scope.client.delete(TESTS_REDIS_CLAIM)
            redis_scope.release()
    if interrupted:
        print(f"interrupted; logs kept in {tmp}")
        return 130

    # --- results -----------------------------------------------------------------------------------------
    problems: list[str] = []
    first_send: dict[str, float] = {}
    per_chat: dict[str, Counter] = defaultdict(Counter)
    per_channel_times: dict[str, list[float]] = defaultdict(list)
    strangers: Counter = Counter()
    refused = wrong_channel = 0
    for t, inst, method, chat, st in sends:
        if st != 200:
            refused += 1
            continue
        per_channel_times[inst].append(t)
        if chat not in expected:
            if chat != warm_chat or args.no_warmup:
                strangers[chat] += 1
            continue
        wrong_channel += inst != instance(expected[chat] % args.channels)
        per_chat[chat][method] += 1
        first_send[chat] = min(first_send.get(chat, t), t)
    missing = [c for c in expected if c not in first_send]
    dup = {c: dict(m) for c, m in per_chat.items() if sum(m.values()) > 1}
    latencies = [first_send[c] - sent_at[n] for c, n in expected.items() if c in first_send]
    gaps = [(b - a) * 1000 for ts in map(sorted, per_channel_times.values()) for a, b in zip(ts, ts[1:])]
    min_gap_ms = min(gaps) if gaps else None
    violations = [g for g in gaps if g < interval_ms - args.gap_tolerance_ms]
    run_s = (max(first_send.values()) - t_first) if first_send else None
    end_to_end_rps = len(first_send) / run_s if run_s else 0.0
    rps = sustained_rps(list(first_send.values()))
    p95 = pct(latencies, 0.95) if latencies else None

    rows_db = res["replies"]
    firsts = [rows_db.get(c, {}) for c in expected]
    outcomes_ai = Counter(outcome_of(r) for r in firsts)
    good = sum(1 for r in firsts if (r.get("generation") or {}).get("backend") == "claude"
               and (r.get("generation") or {}).get("guard") == "passed")
    share = good / args.chats
    calls_ok = Counter(c["status"] for c in model_calls if c["path"] == "/v1/messages")
    n_calls = sum(calls_ok.values())
    gen_s = [r["generation"]["latency_ms"] / 1000 for r in firsts
             if (r.get("generation") or {}).get("latency_ms") is not None]

    bad_codes = {k: v for k, v in Counter(codes).items() if k != 200}
    stored = res["db"].get("webhook_events", {})
    if bad_codes:
        problems.append(f"webhooks not answered 200: {bad_codes}")
    posted = args.chats + (not args.no_warmup)
    if sum(v for k, v in stored.items() if k != "error") != posted:
        problems.append(f"webhook_events rows {stored} ≠ {posted} webhooks posted")
    if missing and not timed_out:
        problems.append(f"{len(missing)} customers never answered (e.g. {missing[:3]})")
    if dup:
        problems.append(f"{len(dup)} customers got more than one send (e.g. {dict(list(dup.items())[:3])})")
    if strangers:
        problems.append(f"sends to chats that never wrote: {dict(strangers)}")
    if wrong_channel:
        problems.append(f"{wrong_channel} sends went out on another channel than the customer's")
    if refused:
        problems.append(f"{refused} calls the fake Green API refused (unknown instance or wrong token)")
    if violations:
        problems.append(f"{len(violations)} of {len(gaps)} gaps between two sends on one channel are below "
                        f"{interval_ms} ms by more than {args.gap_tolerance_ms:g} ms (smallest {min_gap_ms:.1f} ms)")
    if share < args.min_model_share:
        problems.append(f"only {good}/{args.chats} first replies model-written with the guard passed "
                        f"(< {args.min_model_share:.0%})")
    if died:
        problems.append(died)

    print()
    table = [
        ("customers answered", f"{len(first_send)}/{args.chats}" + ("  (TIMED OUT)" if timed_out else "")),
        ("run (first webhook → last reply)", fmt_s(run_s)),
        ("replies/s sustained (middle 95 % of replies)",
         f"{rps:.2f}  (pacing limit {limit_rps:g}: {rps / limit_rps:.1%}; offered "
         f"{args.chats / args.spread if args.spread else float('inf'):g}/s)" if rps else "-"),
        ("replies/s end to end (first webhook → last reply)", f"{end_to_end_rps:.2f}" if end_to_end_rps else "-"),
        ("webhook → first send p50", fmt_s(statistics.median(latencies)) if latencies else "-"),
        ("webhook → first send p95", fmt_s(p95)),
        ("webhook → first send max", fmt_s(max(latencies)) if latencies else "-"),
        ("webhooks posted in", f"{posted_in:.2f}s  (status {dict(Counter(codes))})"),
        ("first replies model-written, guard passed", f"{good}/{args.chats} = {share:.1%}"),
        ("model calls received", f"{n_calls} = {n_calls / args.chats:.2f} per customer  (status {dict(calls_ok)})"),
        ("model connections opened", f"{model_connections} for {n_calls} calls  (each new one a TLS handshake "
                                     f"against the real API)"),
        ("model drafts", dict(model.drafts)),
        *((("searches that found nothing", dict(model.unmatched)),) if model.unmatched else ()),
        ("generation (model_reply) p50 / p95 / max",
         f"{fmt_s(statistics.median(gen_s))} / {fmt_s(pct(gen_s, 0.95))} / {fmt_s(max(gen_s))}" if gen_s else "-"),
        ("tool round (answer → next call) p50 / p95 / max",
         f"{fmt_s(statistics.median(model.tool_rounds))} / {fmt_s(pct(model.tool_rounds, 0.95))} / "
         f"{fmt_s(max(model.tool_rounds))}" if model.tool_rounds else "-"),
        ("one reply per customer", "yes" if not dup and not missing and not strangers
         else f"NO: {len(missing)} missing, {len(dup)} duplicated, {sum(strangers.values())} to strangers"),
        ("min gap on one channel", (f"{min_gap_ms:.1f} ms" if min_gap_ms is not None else "-")
         + f"  (interval {interval_ms} ms; {len(violations)} of {len(gaps)} gaps below it beyond "
           f"{args.gap_tolerance_ms:g} ms)"),
    ]
    app_cpu = sum(v for k, v in res["cpu"].items() if k in procs and v is not None)
    db_cpu = res["cpu"].get("postgres backends") or 0.0
    table.append(("CPU used during the load (s)", ", ".join(f"{k} {v:.1f}" for k, v in res["cpu"].items()
                                                            if v is not None)))
    if first_send and app_cpu:
        per_reply, with_db = app_cpu / len(first_send), (app_cpu + db_cpu) / len(first_send)
        table.append(("CPU per reply: app / app + PostgreSQL",
                      f"{per_reply * 1000:.0f} ms / {with_db * 1000:.0f} ms → at most {os.cpu_count() / with_db:.0f} "
                      f"replies/s on {os.cpu_count()} cpus with nothing else running"))
    table.append(("load average 1 min: before / after the load",
                  f"{res['load'][0][0]:.2f} / {res['load'][1][0]:.2f}  ({os.cpu_count()} cpus; other work on the "
                  f"machine slows the run)"))
    for name, mb in res["rss"].items():
        table.append((f"peak RSS {name} (VmHWM)", f"{mb:.0f} MB" if mb is not None else "-"))
    for label, counts in res["db"].items():
        table.append((f"db {label}", counts))
    width = max(len(k) for k, _ in table)
    print(f"{'metric':{width}s}  value")
    print("-" * (width + 40))
    for k, v in table:
        print(f"{k:{width}s}  {v}")

    posted_wall = {c: sent_at[n] + wall_offset for c, n in expected.items()}
    sent_wall = {c: t + wall_offset for c, t in first_send.items()}
    spans = phases(rows_db, posted_wall, sent_wall, args.model_latency, burst_s)
    if spans:
        width = max(len(name) for name, _ in spans)
        print(f"\nwhere the time goes (s, per customer){' ' * max(0, width - 37)}     p50     p95     max")
        for name, values in spans:
            print(f"{name:{width}s}  {statistics.median(values):6.2f}  {pct(values, 0.95):6.2f}  {max(values):6.2f}")

    print(f"\nqueues over time (from the first webhook; the app's database, every {sampler.every_s:g} s):\n"
          f"{sampler.report(t_first)}")

    if args.profile:
        print(f"\nwhere the app's threads were (--profile; share of samples, every 50 ms, from the first webhook):\n"
              f"{profile_report({k: v for k, v in profiles.items() if k in res['rss']})}")

    print(f"\np95 target ≤ 2 × model latency + burst window + 1 s = {target_p95:g} s: "
          + (f"{'PASS' if p95 <= target_p95 else 'FAIL'} (p95 {p95:.2f} s)" if p95 is not None else "FAIL (no reply)"))
    print(f"sustained replies/s target ≥ {TARGET_RPS:g}: {'PASS' if rps >= TARGET_RPS else 'FAIL'} ({rps:.2f})")
    if good < args.chats:
        print(f"\nfirst replies by outcome: {dict(outcomes_ai.most_common())}")
        shown = 0
        for c in expected:
            r = rows_db.get(c, {})
            gen = r.get("generation") or {}
            if gen.get("backend") == "claude" and gen.get("guard") == "passed":
                continue
            print(f"  {c}: {outcome_of(r)}\n    customer: {r.get('said')!r}\n    reply:    {r.get('reply')!r}")
            shown += 1
            if shown == 5:
                break

    logged = False
    for key, path in logs.items():
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        if text:
            logged = True
            print(f"\n{key} log ({path}), {len(text.splitlines())} lines, last ones:\n{tail(path, 25)}")
    if not logged and not problems and not timed_out:
        shutil.rmtree(tmp, ignore_errors=True)

    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")
        return 2
    if timed_out:
        print(f"\nTIMED OUT after {args.timeout:g}s with {len(first_send)}/{args.chats} answered")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
