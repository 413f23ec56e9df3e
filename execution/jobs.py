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

from execution.lib import cli, job_store
from execution.lib.errors import NotFound
from execution.lib.job_runner import JobsReport, run_due_jobs


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
