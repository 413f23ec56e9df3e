"""Claim stored webhook events with a lease, apply each in one transaction, record the outcome.

The claim, retry and failure rules every event consumer shares; what "apply" means is passed in
(process_inbound.process_event), so this plumbing imports no command.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg2

from execution.lib import event_store
from execution.lib.db import Database
from execution.lib.errors import AppError, DatabaseUnavailable, NotFound, RetryLater

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_BACKOFF_S = 60.0

Apply = Callable[..., Any]        # (conn, *, event, final_attempt) -> process_inbound.ProcessResult
OnProcessed = Callable[[Any], None]


@dataclass
class BatchReport:
    claimed: int = 0
    done: int = 0
    ignored: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    results: list = field(default_factory=list, repr=False)


def _error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


def backoff_s(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 2.0 ** max(attempts - 1, 0))


def handle_claimed(db: Database, event: dict, *, apply: Apply, max_attempts: int, report: BatchReport):
    """Apply one claimed event in one transaction, or schedule its retry / mark it failed."""
    final = event["attempts"] >= max_attempts
    try:
        with db.transaction() as conn:
            if not event_store.lock_claimed(conn, event_id=event["id"], claim_token=event["claim_token"]):
                report.lost += 1
                return None
            result = apply(conn, event=event, final_attempt=final)
            status = "ignored" if result.outcome.value == "ignored" else "done"
            event_store.finish_event(conn, event_id=event["id"], status=status, error=result.reason)
    except (DatabaseUnavailable, psycopg2.OperationalError):
        raise  # the lease will expire and the event will be claimed again
    except Exception as exc:  # recorded on the event row; the worker goes on with the next one
        error = _error_text(exc)
        if not isinstance(exc, RetryLater):
            log.warning("event %s attempt %s failed: %s", event["id"], event["attempts"], type(exc).__name__)
        with db.transaction() as conn:
            if final:
                event_store.fail_event(conn, event_id=event["id"], claim_token=event["claim_token"], error=error)
                report.failed += 1
            else:
                event_store.release_for_retry(
                    conn, event_id=event["id"], claim_token=event["claim_token"],
                    delay_s=backoff_s(event["attempts"]), error=error,
                )
                report.retried += 1
        return None
    if status == "ignored":
        report.ignored += 1
    else:
        report.done += 1
    report.results.append(result)
    return result


def _apply_in_order(db: Database, events: list[dict], *, apply: Apply, max_attempts: int,
                    on_processed: OnProcessed | None) -> BatchReport:
    report = BatchReport(claimed=len(events))
    for event in events:
        result = handle_claimed(db, event, apply=apply, max_attempts=max_attempts, report=report)
        if result is not None and on_processed is not None:
            on_processed(result)
    return report


def _merge(into: BatchReport, part: BatchReport) -> None:
    for name in ("done", "ignored", "retried", "failed", "lost"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    into.results.extend(part.results)


def run_once(
    db: Database,
    *,
    apply: Apply,
    batch: int = 20,
    lease_s: float = 60.0,
    max_attempts: int = MAX_ATTEMPTS,
    on_processed: OnProcessed | None = None,
    pool: Executor | None = None,
) -> BatchReport:
    """Claim up to `batch` due events and apply them in id order.

    With a `pool`, the batch is split by chat: each chat's events are applied in id order by one
    thread, different chats at once (a burst of customers is applied in parallel, while one chat's
    messages never overtake each other). Events of no chat (instance states) form one group too.
    """
    with db.transaction() as conn:
        events = event_store.claim_events(conn, limit=batch, lease_s=lease_s)
    if pool is None or len(events) < 2:
        return _apply_in_order(db, events, apply=apply, max_attempts=max_attempts, on_processed=on_processed)
    groups: dict[tuple, list[dict]] = {}
    for event in events:
        groups.setdefault((event["channel_id"], event.get("chat_id")), []).append(event)
    report = BatchReport(claimed=len(events))
    futures = [pool.submit(_apply_in_order, db, group, apply=apply, max_attempts=max_attempts,
                           on_processed=on_processed) for group in groups.values()]
    errors = []
    for future in futures:
        try:
            _merge(report, future.result())
        except Exception as exc:     # a database outage: the other groups finish; the loop backs off
            errors.append(exc)
    if errors:
        raise errors[0]
    return report


def drain(db: Database, *, max_batches: int = 10_000, **kw) -> BatchReport:
    """Process due events until none is left (operators: `process_inbound --pending`)."""
    total = BatchReport()
    for _ in range(max_batches):
        r = run_once(db, **kw)
        if r.claimed == 0:
            break
        for name in ("claimed", "done", "ignored", "retried", "failed", "lost"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return total


def process_one(db: Database, *, apply: Apply, event_id: int, lease_s: float = 60.0):
    """Claim one event by id, whatever its state unless another worker holds it, and apply it."""
    with db.transaction() as conn:
        events = event_store.claim_events(conn, limit=1, lease_s=lease_s, event_id=event_id)
    if not events:
        with db.connection() as conn:
            if event_store.get_event(conn, event_id=event_id) is None:
                raise NotFound(f"event {event_id} does not exist")
        raise AppError(f"event {event_id} is being processed by another worker right now")
    report = BatchReport(claimed=1)
    result = handle_claimed(db, events[0], apply=apply, max_attempts=MAX_ATTEMPTS, report=report)
    return result if result is not None else report
