"""Answer every conversation whose burst window has closed, many at once on a bounded pool.

Reads/writes: conversations.reply_due_at / reply_claim_until (the claim, a lease), and through
answer_conversation everything a reply writes. The responder loop runs in the web process
(RUN_WORKER=true) and in every `python -m execution.worker`; it claims only as many due
conversations as it has free threads (REPLY_WORKERS), so a slow reply never holds others back
and more processes add capacity through the same claims.
Guard: claims use FOR UPDATE SKIP LOCKED with a lease; a conversation whose lock is busy is
released to be retried in a second, one that fails on Redis (down, or blinking) in two; any other
failure leaves its claim to expire and be retried.

usage: python -m execution.answer_due [--limit 100] [--conversation 42]
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor

import redis as redis_lib

from execution.answer_conversation import Answer, AnswerReport, answer_conversation
from execution.lib import cli, conversation_store, cpu_gate
from execution.lib.db import Database
from execution.lib.directives import DirectiveStore, Snapshot, load_directives
from execution.lib.errors import LockBusy, RetryLater
from execution.lib.llm import BACKENDS, ModelBackend, backend_from_settings
from execution.lib.loop import PollingLoop
from execution.lib.providers import ProviderRegistry
from execution.resume_conversations import resume_conversations

log = logging.getLogger(__name__)

RESUME_CHECK_EVERY_S = 60.0
DEFER_S = 0.3
CLAIM_LEASE_S = 20.0     # renewed every third of it while the answer runs
QUEUED_PER_SLOT = 2      # claim no more while this many answers per gate slot wait to run
CPU_SLOTS = 4            # answers running their own Python at once (lib/cpu_gate.py; measured in SETUP.md, Sizing)
REDIS_RETRY_S = 2.0   # a Redis outage: try again soon, not after the whole lease


def answer_claimed(db: Database, redis, providers: ProviderRegistry, *, conversation_id: int,
                   snapshot: Snapshot, model: ModelBackend | None = None) -> AnswerReport:
    """Answer one claimed conversation; never raises, so one failure cannot stop the others."""
    try:
        return answer_conversation(db, redis, providers, conversation_id=conversation_id, snapshot=snapshot,
                                   model=model)
    except LockBusy:
        with db.connection() as conn:
            conversation_store.release_reply(conn, conversation_id=conversation_id, retry_in_s=1.0)
        return AnswerReport(conversation_id, Answer.BUSY)
    except RetryLater:
        # A message of the chat (perhaps the agent's, from the phone) is not applied yet: answer again
        # in a moment, with it taken into account.
        with db.connection() as conn:
            conversation_store.release_reply(conn, conversation_id=conversation_id, retry_in_s=DEFER_S)
        return AnswerReport(conversation_id, Answer.BUSY, kind="deferred")
    except redis_lib.RedisError as exc:
        log.warning("answer: conversation %s waits for Redis (%s); retrying in %ss", conversation_id,
                    type(exc).__name__, REDIS_RETRY_S)
        try:
            with db.connection() as conn:
                conversation_store.release_reply(conn, conversation_id=conversation_id, retry_in_s=REDIS_RETRY_S)
        except Exception as release_exc:  # the claim then expires after its lease, as for any failure
            log.error("answer: conversation %s claim not released: %s", conversation_id, type(release_exc).__name__)
        return AnswerReport(conversation_id, Answer.FAILED, kind=type(exc).__name__)
    except Exception as exc:
        # The claim is left to expire, so another pass retries after the lease. The log names
        # the error type and where it was raised, never its message (it may quote the customer).
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log.error("answer: conversation %s failed: %s at %s:%s", conversation_id, type(exc).__name__,
                  where.filename.rsplit("/", 1)[-1], where.lineno)
        return AnswerReport(conversation_id, Answer.FAILED, kind=type(exc).__name__)


def answer_due(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, limit: int = 10,
               lease_s: float = 60.0, conversation_id: int | None = None,
               model: ModelBackend | None = None) -> list[AnswerReport]:
    """Claim and answer the due conversations (or one, by id, due or not) in this thread, in turn."""
    with db.transaction() as conn:
        due = conversation_store.claim_due_replies(conn, limit=limit, lease_s=lease_s, conversation_id=conversation_id)
    return [answer_claimed(db, redis, providers, conversation_id=row["id"], snapshot=snapshot, model=model)
            for row in due]


class Responder(PollingLoop):
    """Claims due conversations while it has free threads and answers each on the pool."""

    def __init__(self, db: Database, redis, providers: ProviderRegistry, *, directives: DirectiveStore,
                 pool_size: int = 8, idle_s: float = 0.1, lease_s: float = CLAIM_LEASE_S,
                 model: ModelBackend | None = None, cpu_slots: int = CPU_SLOTS) -> None:
        super().__init__("responder", self._step, idle_s=idle_s, db=db)
        self.db, self.redis, self.providers, self.directives = db, redis, providers, directives
        self.model = model      # None: the offline responder writes every reply
        self.pool_size, self.lease_s = pool_size, lease_s
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="reply")
        # At most this many answers run their own Python at once; their waits on a model or a provider
        # do not count (lib/cpu_gate.py). 0: no gate.
        self._gate = cpu_gate.Gate(cpu_slots) if cpu_slots else None
        self._in_flight: dict[Future, int] = {}
        self._lock = threading.Lock()
        self._next_resume_check = 0.0
        self._next_renewal = 0.0
        self._not_started = 0     # answers handed to the pool that have not reached the gate yet

    def _step(self) -> bool:
        snapshot = self.directives.current()
        if time.monotonic() >= self._next_resume_check:
            self._next_resume_check = time.monotonic() + RESUME_CHECK_EVERY_S
            resume_conversations(self.db, snapshot=snapshot)
        self._renew_claims()
        with self._lock:
            free = self.pool_size - len(self._in_flight)
        if self._gate is not None:
            # Answers queued at the gate would only wait here, while another process could start them.
            with self._lock:
                backlog = max(self._not_started, self._gate.queued)
            free = min(free, QUEUED_PER_SLOT * self._gate.slots - backlog)
        if free <= 0:
            return False        # a finishing answer wakes the loop, or the next look after idle_s
        with self.db.transaction() as conn:
            due = conversation_store.claim_due_replies(conn, limit=free, lease_s=self.lease_s)
        for row in due:
            with self._lock:
                self._not_started += 1
            # The gate serves first the customer who has waited longest (a deferred retry keeps its place).
            since = row.get("reply_pending_since") or row.get("reply_due_at")
            waiting_since = since.timestamp() if since else time.time()
            future = self._pool.submit(self._answer, row["id"], snapshot, waiting_since)
            with self._lock:
                self._in_flight[future] = row["id"]
            future.add_done_callback(self._finished)
        if len(due) == free:       # the pool (or the gate's queue) is full: claim again when an answer finishes
            self.wake_when_one_finishes()
            return True
        return False               # everything due is claimed: look again after idle_s

    def _answer(self, conversation_id: int, snapshot: Snapshot, waiting_since: float) -> AnswerReport:
        # The longest-waiting customer's reply gets the next free place, whatever step it is at.
        with cpu_gate.working(self._gate, key=waiting_since):
            with self._lock:
                self._not_started -= 1
            return answer_claimed(self.db, self.redis, self.providers, conversation_id=conversation_id,
                                  snapshot=snapshot, model=self.model)

    def _renew_claims(self) -> None:
        """Keep the claims of the answers in progress: a short lease that a live responder renews, so a
        dead responder's conversations are answered by another within seconds, not minutes."""
        if time.monotonic() < self._next_renewal:
            return
        self._next_renewal = time.monotonic() + self.lease_s / 3
        with self._lock:
            ids = list(self._in_flight.values())
        if ids:
            with self.db.connection() as conn:
                conversation_store.extend_claims(conn, conversation_ids=ids, lease_s=self.lease_s)

    def _finished(self, future: Future) -> None:
        with self._lock:
            self._in_flight.pop(future, None)
        self.one_finished()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--limit", type=int, default=100, help="answer at most this many conversations")
    p.add_argument("--conversation", type=int, default=None, help="answer this one conversation now, due or not")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="override LLM_BACKEND for this run")
    args = p.parse_args(argv)

    def work(res):
        providers = ProviderRegistry(secret_key=res.settings.secret_key)
        return answer_due(res.db, res.redis, providers, snapshot=load_directives(), limit=args.limit,
                          conversation_id=args.conversation,
                          model=backend_from_settings(res.settings, choice=args.backend))

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
