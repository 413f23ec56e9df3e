"""Process stored webhook events: claim with a lease, apply, record the outcome; answer due replies.

Reads/writes: webhook_events (status, claim_token, lease_until, attempts, last_error) and,
through process_inbound, the conversation tables. The web process wakes its own worker the
moment an event is stored; a separate worker polls (every --idle-seconds, default 0.25).
Guard: claims use FOR UPDATE SKIP LOCKED; each event is applied and marked done in one
transaction that first re-locks it by claim token, so a crashed worker's event is re-claimed
after its lease and applied exactly once. Failures retry with bounded backoff, then `failed`.
Runs as a thread in the web process (RUN_WORKER=true) and as any number of these commands,
each of which also runs a responder (answer_due) for the conversations whose burst window closed,
an outbox dispatcher (reconcile_outbox) that sends what is queued, each channel in turn, and a
job runner (execution.jobs) for what is due at a time (viewing reminders, feedback questions).

usage: python -m execution.worker [--once] [--batch 20] [--lease-seconds 60]
"""

from __future__ import annotations

import logging
import os
import socket
from concurrent.futures import Executor, ThreadPoolExecutor

from execution.lib import cli, ops_store
from execution.lib.db import Database
from execution.lib.directives import DirectiveStore, Snapshot, load_directives
from execution.lib.event_runner import MAX_ATTEMPTS, MAX_BACKOFF_S, BatchReport, OnProcessed, backoff_s
from execution.lib.event_runner import drain as _drain
from execution.lib.event_runner import run_once as _run_once
from execution.lib.loop import PollingLoop
from execution.migrate import require_migrated
from execution.process_inbound import process_event

log = logging.getLogger(__name__)

__all__ = ["MAX_ATTEMPTS", "MAX_BACKOFF_S", "Worker", "backoff_s", "drain", "run_once"]


def _applier(snapshot: Snapshot):
    # process_event is looked up when called, so a test may replace it on this module.
    return lambda conn, *, event, final_attempt=False: process_event(
        conn, event=event, snapshot=snapshot, final_attempt=final_attempt)


def run_once(db: Database, *, snapshot: Snapshot, batch: int = 20, lease_s: float = 60.0,
             max_attempts: int = MAX_ATTEMPTS, on_processed: OnProcessed | None = None,
             pool: Executor | None = None) -> BatchReport:
    """Claim up to `batch` due events and apply them in id order under `snapshot` (by chat on `pool`)."""
    return _run_once(db, apply=_applier(snapshot), batch=batch, lease_s=lease_s, max_attempts=max_attempts,
                     on_processed=on_processed, pool=pool)


def drain(db: Database, *, snapshot: Snapshot, **kw) -> BatchReport:
    """Process due events until none is left (operators: `python -m execution.worker --once`)."""
    return _drain(db, apply=_applier(snapshot), **kw)


class Worker(PollingLoop):
    """The event loop; `wake()` starts a batch at once, otherwise it polls every `idle_s`.

    A batch's chats are applied on `appliers` threads at once (each chat's events in order), so a
    burst of customers is not applied one transaction after another.
    """

    def __init__(self, db: Database, *, directives: DirectiveStore, batch: int = 20, lease_s: float = 60.0,
                 idle_s: float = 0.25, on_processed: OnProcessed | None = None, appliers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=appliers, thread_name_prefix="apply") if appliers > 1 else None

        def step() -> bool:
            return run_once(db, snapshot=directives.current(), batch=batch, lease_s=lease_s,
                            on_processed=on_processed, pool=self._pool).claimed > 0

        super().__init__("webhook-worker", step, idle_s=idle_s, db=db)
        self.db = db
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--once", action="store_true", help="process what is due now, then exit")
    p.add_argument("--batch", type=int, default=20, help="events claimed at a time")
    p.add_argument("--lease-seconds", type=float, default=60.0, help="how long a claim holds before others may take it")
    p.add_argument("--idle-seconds", type=float, default=0.25, help="how often an idle worker looks for new events")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            require_migrated(conn)          # the schema this release expects, as the web processes check
        if args.once:
            return drain(res.db, snapshot=load_directives(), batch=args.batch, lease_s=args.lease_seconds)
        from execution.answer_due import Responder
        from execution.lib.llm import backend_from_settings
        from execution.lib.providers import ProviderRegistry
        from execution.reconcile_outbox import OutboxDispatcher

        store = DirectiveStore(on_change=ops_store.directive_recorder(
            res.db, actor=f"worker:{socket.gethostname()}:{os.getpid()}"))
        from execution.lib import meaning

        meaning.warm(store.current()["escalation_triggers"])   # before the first reply, not during it
        worker = Worker(res.db, directives=store, batch=args.batch, lease_s=args.lease_seconds,
                        idle_s=args.idle_seconds)
        providers = ProviderRegistry(secret_key=res.settings.secret_key)
        responder = Responder(res.db, res.redis, providers, directives=store,
                              pool_size=res.settings.reply_workers,
                              model=backend_from_settings(res.settings)).start()
        dispatcher = OutboxDispatcher(res.db, res.redis, providers, directives=store,
                                      pool_size=res.settings.reply_workers).start()
        from execution.job_handlers import job_handlers
        from execution.lib.job_runner import JobRunner

        jobs = JobRunner(res.db, job_handlers(res.db, res.redis, providers, store)).start()
        log.info("worker %s started (events, replies, sends and jobs)", worker.worker_name)
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.stop_event.set()
        finally:
            worker.stop()
            responder.stop()
            dispatcher.stop()
            jobs.stop()
        return None

    return cli.run_command(work, redis=not args.once, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
