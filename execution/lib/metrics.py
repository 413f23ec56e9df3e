"""Prometheus figures read from PostgreSQL at scrape time, so several web and worker processes count once.

Counters are totals over the stored rows (webhook events, sends, replies, escalations), gauges the
waiting work and the loops' last beats. Labels are values the code sets (provider, status, backend,
rule, loop), never a customer's words, a phone number or a token; anything else becomes `other`.
When the database does not answer, the scrape still succeeds with `wa_assistant_up 0`.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterator

import psycopg2
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily

from execution.lib.db import Connection, Database, transaction
from execution.lib.errors import AppError

log = logging.getLogger(__name__)

PREFIX = "wa_assistant_"
EVENT_OUTCOMES = ("done", "ignored", "failed")              # where a stored webhook event ends
EVENT_WAITING = ("pending", "processing")
SEND_OUTCOMES = ("sent", "failed", "unknown", "suppressed")  # an unknown send may later settle as sent
SEND_WAITING = ("pending", "retrying")
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")

# Per (figure, a, b): webhook events by provider and status, sends by the channel's provider and
# status, escalations by rule and category, and the AI drafts the fence kept back. One statement.
_COUNTS = """
SELECT 'events' AS figure, provider AS a, status AS b, count(*) AS n FROM webhook_events GROUP BY provider, status
UNION ALL
SELECT 'sends', c.provider, o.status, count(*) FROM outbox o JOIN channels c ON c.id = o.channel_id
 GROUP BY c.provider, o.status
UNION ALL
SELECT 'escalations', rule, category, count(*) FROM escalations GROUP BY rule, category
UNION ALL
SELECT 'escalations_open', '', '', count(*) FROM escalations WHERE status = 'open'
UNION ALL
SELECT 'suppressed', '', '', count(*) FROM messages WHERE author = 'ai' AND delivery_status = 'suppressed'
"""

# The AI's messages: who wrote each (a fallback names the model that failed), what the model cost,
# and the drafts the fence kept back.
_REPLIES = """
SELECT coalesce(generation->>'fallback_from', generation->>'backend') AS model_backend,
       generation->>'backend' AS backend,
       count(*) AS replies,
       count(*) FILTER (WHERE generation ? 'fallback_from') AS fallbacks,
       count(generation->'latency_ms') AS timed,
       coalesce(sum((generation->>'latency_ms')::float8), 0) / 1000.0 AS latency_s,
       coalesce(sum((generation->>'input_tokens')::bigint), 0) AS input,
       coalesce(sum((generation->>'output_tokens')::bigint), 0) AS output,
       coalesce(sum((generation->>'cache_read_tokens')::bigint), 0) AS cache_read,
       coalesce(sum((generation->>'cache_write_tokens')::bigint), 0) AS cache_write
  FROM messages WHERE author = 'ai' AND generation ? 'backend'
 GROUP BY 1, 2
"""


def label(value: Any) -> str:
    """A label value the code set (a provider, a rule name); anything else (digits first, spaces, long) is `other`."""
    text = "" if value is None else str(value)
    return text if _LABEL.fullmatch(text) else "other"


class DatabaseCollector:
    """Reads every figure from PostgreSQL on each `collect()`, in one read-only snapshot.

    `backlog(conn)` is check_backlog: the waiting work and the loops' beats, counted as /health counts them.
    """

    def __init__(self, db: Database | None, *, backlog: Callable[[Connection], Any]) -> None:
        self._db = db
        self._backlog = backlog

    def collect(self) -> Iterator[Metric]:
        try:
            if self._db is None:
                raise AppError("no database configured")
            with self._db.connection() as conn, transaction(conn):
                with conn.cursor() as cur:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cur.execute(_COUNTS)
                    counts = cur.fetchall()
                    cur.execute(_REPLIES)
                    replies = cur.fetchall()
                backlog = self._backlog(conn)
        except (AppError, psycopg2.Error) as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            yield _up(0)
            return
        yield _up(1)
        yield from _events(counts, backlog)
        yield from _sends(counts, backlog)
        yield from _replies(replies, _total(counts, "suppressed"), backlog)
        yield from _escalations(counts)
        yield from _loops(backlog)


def metrics_registry(db: Database | None, *, backlog: Callable[[Connection], Any]) -> CollectorRegistry:
    """A registry of its own (not the process-wide one) holding only the database collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db, backlog=backlog))
    return registry


def _up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}up", "1 when the database answered this scrape, else 0 (no other figures).",
                             value=value)


def _grouped(counts: list[dict], figure: str) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for r in counts:
        if r["figure"] == figure:
            key = (label(r["a"]), label(r["b"]))
            out[key] = out.get(key, 0) + r["n"]
    return out


def _total(counts: list[dict], figure: str) -> int:
    return sum(r["n"] for r in counts if r["figure"] == figure)


def _events(counts: list[dict], backlog) -> Iterator[Metric]:
    by = _grouped(counts, "events")
    providers = sorted({p for p, _ in by})
    received = CounterMetricFamily(f"{PREFIX}webhook_events_received", "Webhook events stored, by provider.",
                                   labels=["provider"])
    processed = CounterMetricFamily(f"{PREFIX}webhook_events_processed",
                                    "Stored webhook events the worker finished, by provider and outcome "
                                    "(done, ignored with a reason, failed after its attempts).",
                                    labels=["provider", "outcome"])
    waiting = GaugeMetricFamily(f"{PREFIX}webhook_events_waiting",
                                "Stored webhook events not yet applied (pending or being processed), by provider.",
                                labels=["provider"])
    for p in providers:
        received.add_metric([p], sum(n for (q, _), n in by.items() if q == p))
        for outcome in EVENT_OUTCOMES:
            processed.add_metric([p, outcome], by.get((p, outcome), 0))
        waiting.add_metric([p], sum(by.get((p, s), 0) for s in EVENT_WAITING))
    yield from (received, processed, waiting)
    yield GaugeMetricFamily(f"{PREFIX}webhook_events_oldest_waiting_seconds",
                            "Age of the oldest webhook event not yet applied (0 when none waits).",
                            value=backlog.oldest_event_s or 0.0)


def _sends(counts: list[dict], backlog) -> Iterator[Metric]:
    by = _grouped(counts, "sends")
    providers = sorted({p for p, _ in by})
    settled = CounterMetricFamily(f"{PREFIX}sends", "Outbound messages by the channel's provider and outcome "
                                  "(sent, failed, unknown: may have gone, not resent; suppressed).",
                                  labels=["provider", "outcome"])
    queued = GaugeMetricFamily(f"{PREFIX}sends_queued", "Sends waiting for their turn or for the provider "
                               "(pending or retrying), by provider.", labels=["provider"])
    for p in providers:
        for outcome in SEND_OUTCOMES:
            settled.add_metric([p, outcome], by.get((p, outcome), 0))
        queued.add_metric([p], sum(by.get((p, s), 0) for s in SEND_WAITING))
    yield from (settled, queued)
    oldest = max((q["oldest_s"] or 0.0 for q in backlog.sends_queued), default=0.0)
    yield GaugeMetricFamily(f"{PREFIX}sends_oldest_queued_seconds",
                            "Age of the oldest queued send (0 when none is queued).", value=oldest)
    yield GaugeMetricFamily(f"{PREFIX}channels_failing", "Channels that cannot send (consecutive failures, or "
                            "the provider reports them logged out or blocked).", value=len(backlog.failing_channels))
    yield GaugeMetricFamily(f"{PREFIX}conversations_flagged", "Conversations flagged for the agent's attention.",
                            value=backlog.conversations_flagged)


def _replies(rows: list[dict], suppressed: int, backlog) -> Iterator[Metric]:
    yield GaugeMetricFamily(f"{PREFIX}replies_due", "Conversations whose reply is due now (burst window closed).",
                            value=backlog.replies_due)
    yield GaugeMetricFamily(f"{PREFIX}replies_oldest_due_seconds",
                            "How long the longest-due reply has been due (0 when none is due).",
                            value=backlog.oldest_reply_due_s or 0.0)
    yield GaugeMetricFamily(f"{PREFIX}replies_in_progress", "Conversations a responder is answering now.",
                            value=backlog.replies_in_progress)
    yield GaugeMetricFamily(f"{PREFIX}jobs_due", "Jobs whose time has come (viewing reminders, feedback "
                            "questions, follow-ups) and that no runner has taken yet.", value=backlog.jobs_due)
    yield GaugeMetricFamily(f"{PREFIX}jobs_oldest_due_seconds", "Seconds the oldest due job has waited.",
                            value=backlog.oldest_job_due_s or 0.0)
    yield GaugeMetricFamily(f"{PREFIX}jobs_failed", "Jobs that used up their attempts "
                            "(python -m execution.jobs --failed).", value=backlog.jobs_failed)
    written = CounterMetricFamily(f"{PREFIX}replies", "Replies the assistant wrote to customers (not handoffs "
                                  "or alerts), by the backend whose text was sent (offline: the templates, also when a "
                                  "model failed).", labels=["backend"])
    fallbacks = CounterMetricFamily(f"{PREFIX}model_fallbacks", "Replies the offline responder wrote because the "
                                    "model failed or its drafts missed the guards, by model backend.",
                                    labels=["backend"])
    latency = SummaryMetricFamily(f"{PREFIX}model_reply_latency_seconds", "Time a model took to write a reply "
                                  "(tool rounds and regenerations included), by model backend.", labels=["backend"])
    tokens = CounterMetricFamily(f"{PREFIX}model_tokens", "Tokens the model backends used for replies, by backend "
                                 "and kind (input, output, cache_read, cache_write).", labels=["backend", "kind"])
    per_writer: dict[str, int] = {}
    per_model: dict[str, dict[str, float]] = {}
    for r in rows:
        writer, model = label(r["backend"]), label(r["model_backend"])
        per_writer[writer] = per_writer.get(writer, 0) + r["replies"]
        if model == "offline":
            continue
        m = per_model.setdefault(model, dict.fromkeys(("fallbacks", "timed", "latency_s", *TOKEN_KINDS), 0))
        for key in m:
            m[key] += float(r[key])
    for writer, n in sorted(per_writer.items()):
        written.add_metric([writer], n)
    for model, m in sorted(per_model.items()):
        fallbacks.add_metric([model], m["fallbacks"])
        latency.add_metric([model], count_value=m["timed"], sum_value=float(m["latency_s"]))
        for kind in TOKEN_KINDS:
            tokens.add_metric([model, kind], m[kind])
    yield from (written, fallbacks, latency, tokens)
    yield CounterMetricFamily(f"{PREFIX}fence_suppressions", "AI drafts the fence kept back (the agent took over, "
                              "or the mode changed, while the reply was written).", value=suppressed)


def _escalations(counts: list[dict]) -> Iterator[Metric]:
    escalations = CounterMetricFamily(f"{PREFIX}escalations", "Conversations handed to the agent, by rule "
                                      "(`model` when the model asked) and category.", labels=["rule", "category"])
    for (rule, category), n in sorted(_grouped(counts, "escalations").items()):
        escalations.add_metric([rule, category], n)
    yield escalations
    yield GaugeMetricFamily(f"{PREFIX}escalations_open", "Escalations not yet resolved.",
                            value=_total(counts, "escalations_open"))


def _loops(backlog) -> Iterator[Metric]:
    alive = GaugeMetricFamily(f"{PREFIX}loops_alive", "Loops of each kind (webhook-worker, responder, "
                              "outbox-dispatcher) that beat recently enough to count as alive for /health.",
                              labels=["loop"])
    age = GaugeMetricFamily(f"{PREFIX}loop_last_beat_seconds", "Seconds since the latest beat of any loop of "
                            "each kind (every live loop beats every 5 s).", labels=["loop"])
    for loop, beat in sorted(backlog.loops.items()):
        alive.add_metric([label(loop)], beat["alive"])
        age.add_metric([label(loop)], beat["last_beat_s"] or 0.0)
    yield from (alive, age)
