"""Process stored webhook events: claim with a lease, apply, record the outcome.

Reads/writes: webhook_events (status, claim_token, lease_until, attempts, last_error) and,
through process_inbound, the conversation tables. The web process wakes its own worker the
moment an event is stored; a separate worker polls (every --idle-seconds, default 0.25).
Guard: claims use FOR UPDATE SKIP LOCKED; each event is applied and marked done in one
transaction that first re-locks it by claim token, so a crashed worker's event is re-claimed
after its lease and applied exactly once. Failures retry with bounded backoff, then `failed`.
Runs as a thread in the web process (RUN_WORKER=true) and as any number of these commands.

usage: python -m execution.worker [--once] [--batch 20] [--lease-seconds 60]
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

import psycopg2

from execution.lib import cli, event_store
from execution.lib.db import Database
from execution.lib.errors import AppError, DatabaseUnavailable, NotFound, RetryLater
from execution.process_inbound import ProcessResult, process_event

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_BACKOFF_S = 60.0

OnProcessed = Callable[[ProcessResult], None]


@dataclass
class BatchReport:
    claimed: int = 0
    done: int = 0
    ignored: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    results: list[ProcessResult] = field(default_factory=list, repr=False)


def _error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


def backoff_s(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 2.0 ** max(attempts - 1, 0))


def handle_claimed(db: Database, event: dict, *, max_attempts: int, report: BatchReport) -> ProcessResult | None:
    """Apply one claimed event in one transaction, or schedule its retry / mark it failed."""
    final = event["attempts"] >= max_attempts
    try:
        with db.transaction() as conn:
            if not event_store.lock_claimed(conn, event_id=event["id"], claim_token=event["claim_token"]):
                report.lost += 1
                return None
            result = process_event(conn, event=event, final_attempt=final)
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


def run_once(
    db: Database,
    *,
    batch: int = 20,
    lease_s: float = 60.0,
    max_attempts: int = MAX_ATTEMPTS,
    on_processed: OnProcessed | None = None,
) -> BatchReport:
    """Claim up to `batch` due events and apply them in id order."""
    report = BatchReport()
    with db.transaction() as conn:
        events = event_store.claim_events(conn, limit=batch, lease_s=lease_s)
    report.claimed = len(events)
    for event in events:
        result = handle_claimed(db, event, max_attempts=max_attempts, report=report)
        if result is not None and on_processed is not None:
            on_processed(result)
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


def process_one(db: Database, *, event_id: int, lease_s: float = 60.0) -> ProcessResult | BatchReport:
    """Claim one event by id, whatever its state unless another worker holds it, and apply it."""
    with db.transaction() as conn:
        events = event_store.claim_events(conn, limit=1, lease_s=lease_s, event_id=event_id)
    if not events:
        with db.connection() as conn:
            if event_store.get_event(conn, event_id=event_id) is None:
                raise NotFound(f"event {event_id} does not exist")
        raise AppError(f"event {event_id} is being processed by another worker right now")
    report = BatchReport(claimed=1)
    result = handle_claimed(db, events[0], max_attempts=MAX_ATTEMPTS, report=report)
    return result if result is not None else report


class Worker:
    """The processing loop; `wake()` starts a batch at once, otherwise it polls every `idle_s`."""

    def __init__(
        self,
        db: Database,
        *,
        batch: int = 20,
        lease_s: float = 60.0,
        idle_s: float = 0.25,
        on_processed: OnProcessed | None = None,
    ) -> None:
        self.db = db
        self.batch = batch
        self.lease_s = lease_s
        self.idle_s = idle_s
        self.on_processed = on_processed
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._thread: threading.Thread | None = None

    def wake(self, _event_id: int | None = None) -> None:
        self._wake.set()

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                self._wake.clear()
                report = run_once(self.db, batch=self.batch, lease_s=self.lease_s, on_processed=self.on_processed)
                failures = 0
                if report.claimed == 0:
                    self._wake.wait(self.idle_s)
            except (DatabaseUnavailable, psycopg2.Error) as exc:
                failures += 1
                log.warning("worker: database unavailable (%s); retrying", type(exc).__name__)
                self.stop_event.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))

    def start(self) -> "Worker":
        self._thread = threading.Thread(target=self.run, name="webhook-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--once", action="store_true", help="process what is due now, then exit")
    p.add_argument("--batch", type=int, default=20, help="events claimed at a time")
    p.add_argument("--lease-seconds", type=float, default=60.0, help="how long a claim holds before others may take it")
    p.add_argument("--idle-seconds", type=float, default=0.25, help="how often an idle worker looks for new events")
    args = p.parse_args(argv)

    def work(res):
        if args.once:
            return drain(res.db, batch=args.batch, lease_s=args.lease_seconds)
        from execution.answer_conversation import Responder
        from execution.lib.providers import ProviderRegistry

        worker = Worker(res.db, batch=args.batch, lease_s=args.lease_seconds, idle_s=args.idle_seconds)
        responder = Responder(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key)).start()
        log.info("worker %s started (events and replies)", worker.name)
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.stop_event.set()
        finally:
            responder.stop()
        return None

    return cli.run_command(work, redis=not args.once, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
