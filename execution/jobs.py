"""Jobs due at a time (viewing reminders, feedback questions): run them, list them, retry a failed one.

Reads/writes: jobs (claimed FOR UPDATE SKIP LOCKED with a lease, like webhook events), and through
each kind's handler the conversation tables and the outbox. A job row is written in the same
transaction as what caused it (a booking), so a crash or restart loses none; any number of worker
processes share them. A handler's sends carry the job's key as their idempotency key, so a job
re-run after a crash (its lease ran out before it was marked done) acts once. A handler that
fails is retried with backoff (30 s doubling, at most 10 min) up to the job's max_attempts, then
`failed` and listed by `--failed`; `--retry ID` puts it back.
The event worker runs a JobRunner loop (`python -m execution.worker`, or the web process with
RUN_WORKER=true).

usage: python -m execution.jobs --due            what is due now and not yet run
       python -m execution.jobs --failed         jobs that used up their attempts, with the last error
       python -m execution.jobs --retry 42       run a failed or cancelled job again, now
       python -m execution.jobs --run-once       run what is due now, then exit
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import psycopg2

from execution.lib import cli, job_store
from execution.lib.db import Database
from execution.lib.errors import DatabaseUnavailable, NotFound
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


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--due", action="store_true", help="pending jobs whose time has come")
    mode.add_argument("--pending", action="store_true", help="every pending job, due or not")
    mode.add_argument("--failed", action="store_true", help="jobs that used up their attempts")
    mode.add_argument("--retry", type=int, metavar="ID", help="put a failed or cancelled job back, due now")
    mode.add_argument("--run-once", action="store_true", help="run what is due now, then exit")
    p.add_argument("--limit", type=int, default=100)
    args = p.parse_args(argv)

    def work(res):
        if args.run_once:
            from execution.job_handlers import job_handlers
            from execution.lib.directives import DirectiveStore
            from execution.lib.providers import ProviderRegistry

            handlers = job_handlers(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                    DirectiveStore())
            total = JobsReport()
            while True:
                before = total.claimed
                run_due_jobs(res.db, handlers=handlers, report=total)
                if total.claimed == before:
                    return total
        with res.db.connection() as conn:
            if args.retry is not None:
                row = job_store.retry_now(conn, job_id=args.retry)
                if row is None:
                    raise NotFound(f"no failed or cancelled job {args.retry}")
                return row
            status = "failed" if args.failed else "pending"
            return job_store.listing(conn, status=status, limit=args.limit, due_only=args.due)

    return cli.run_command(work, redis=args.run_once, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
