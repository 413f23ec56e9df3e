"""Run jobs due at a time: claim with a lease, call the kind's handler, record done / skipped / retry.

The plumbing every job kind shares (the handlers are passed in, so this imports no command). A
handler's side effects carry the job's key as their idempotency key: a job re-run after a crash
acts once. Failures are retried with backoff (30 s doubling, at most 10 min) up to max_attempts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import psycopg2

from execution.lib import job_store
from execution.lib.db import Database
from execution.lib.errors import DatabaseUnavailable
from execution.lib.loop import PollingLoop

log = logging.getLogger(__name__)

LEASE_S = 120.0
MAX_BACKOFF_S = 600.0


@dataclass(frozen=True)
class JobDone:
    status: str = "done"      # done | skipped (nothing to do any more: the viewing was cancelled, ...)
    outcome: str = ""


Handler = Callable[[dict], JobDone]     # gets the claimed job row


@dataclass
class JobsReport:
    claimed: int = 0
    done: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    outcomes: list = field(default_factory=list, repr=False)


def backoff_s(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 30.0 * 2 ** max(attempts - 1, 0))


def run_due_jobs(db: Database, *, handlers: dict[str, Handler], batch: int = 20, lease_s: float = LEASE_S,
                 report: JobsReport | None = None) -> JobsReport:
    """Claim up to `batch` due jobs of the kinds we can run and run each; returns what happened."""
    report = report or JobsReport()
    with db.transaction() as conn:
        jobs = job_store.claim(conn, batch=batch, lease_s=lease_s, kinds=tuple(handlers))
    report.claimed += len(jobs)
    for job in jobs:
        try:
            done = handlers[job["kind"]](job)
        except (DatabaseUnavailable, psycopg2.OperationalError):
            raise                      # the lease runs out and the job is claimed again
        except Exception as exc:       # noqa: BLE001 - any failure is retried with a bound, then listed
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            with db.transaction() as conn:
                status = job_store.retry_later(conn, job_id=job["id"], claim_token=job["claim_token"], error=error,
                                               delay_s=backoff_s(job["attempts"]))
            log.warning("job %s (%s) failed on attempt %s (%s): %s", job["id"], job["kind"], job["attempts"],
                        type(exc).__name__, status)
            if status == "failed":
                report.failed += 1
            elif status == "lost":
                report.lost += 1
            else:
                report.retried += 1
            continue
        with db.transaction() as conn:
            kept = job_store.finish(conn, job_id=job["id"], claim_token=job["claim_token"], status=done.status,
                                    outcome=done.outcome)
        if not kept:
            report.lost += 1
            continue
        report.done += done.status == "done"
        report.skipped += done.status == "skipped"
        report.outcomes.append((job["kind"], done.status, done.outcome))
        log.info("job %s (%s) %s: %s", job["id"], job["kind"], done.status, done.outcome)
    return report


class JobRunner(PollingLoop):
    """The jobs loop: looks for due jobs every `idle_s` (1 s by default)."""

    def __init__(self, db: Database, handlers: dict[str, Handler], *, idle_s: float = 1.0, batch: int = 20) -> None:
        super().__init__("job-runner", lambda: run_due_jobs(db, handlers=handlers, batch=batch).claimed > 0,
                         idle_s=idle_s, db=db)
