"""Send what is queued when its channel's turn comes; settle what an outage or a crash left unsettled.

Reads/writes: outbox (claims, status, attempts), messages (delivery status), conversations
(needs_attention), channels (send health). The dispatcher loop runs in the web process and in every
worker; by hand one pass runs. Three steps, each row claimed with FOR UPDATE SKIP LOCKED so any
number of processes may run it:
1. `retrying` past message_sending_rules.retry_horizon_s → failed, the conversation flagged.
2. `pending` whose sender's claim ran out (it died mid-send) → ask the provider (Green API: the
   outgoing journal and the queue): sent → settled with its id; certainly not sent → sent again;
   cannot tell for unknown_after_s → `unknown`, flagged for the agent, never resent blindly.
3. queued (`retrying`) and due — waiting for its channel's pacing slot, behind an earlier send, or
   after the provider refused it — → sent, one at a time per channel in order (a slot further away
   than a moment is not waited for: the send is scheduled for it), an AI message only if the
   conversation is still the AI's at the version it was written under (else a suppressed draft).
Guard: the outbox row's claim; idempotency keys as written by send_whatsapp_message.

usage: python -m execution.reconcile_outbox
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from execution.lib import cli, conversation_store, message_store, tenant_store
from execution.lib.db import Database
from execution.lib.delivery import deliver
from execution.lib.directives import Snapshot, load_directives
from execution.lib.loop import PollingLoop
from execution.lib.outbound import OutboundContent
from execution.lib.providers import ProviderRegistry, provider_class
from execution.lib.providers.base import SendLookup

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    expired: int = 0
    settled: int = 0
    resent: int = 0
    unknown: int = 0
    waiting: int = 0
    suppressed: int = 0
    outcomes: list[str] = field(default_factory=list)


def reconcile_outbox(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot,
                     limit: int = 50) -> ReconcileReport:
    """One pass: expire, resolve what crashes left, then send what is due (in this thread, in turn)."""
    report = settle_unsettled(db, providers, snapshot=snapshot, limit=limit)
    for row in claim_due(db, snapshot=snapshot, limit=limit):
        _resend(db, redis, providers, row, snapshot=snapshot, report=report)
    return report


def settle_unsettled(db: Database, providers: ProviderRegistry, *, snapshot: Snapshot,
                     limit: int = 50) -> ReconcileReport:
    """Expire sends refused past the horizon; ask the provider about sends a crash left half-done."""
    report = ReconcileReport()
    with db.transaction() as conn:
        for row in message_store.expire_retries(conn):
            message_store.flag_conversation(conn, conversation_id=row["conversation_id"])
            report.expired += 1
    with db.transaction() as conn:
        stranded = message_store.claim_stranded(conn, limit=limit,
                                                claim_s=snapshot["message_sending_rules"]["send_claim_s"])
    for row in stranded:
        _resolve_stranded(db, providers, row, snapshot=snapshot, report=report)
    return report


def claim_due(db: Database, *, snapshot: Snapshot, limit: int) -> list[dict]:
    """Queued sends whose time has come: the oldest of each channel with nothing in flight."""
    with db.transaction() as conn:
        return message_store.claim_due_retries(conn, limit=limit,
                                               claim_s=snapshot["message_sending_rules"]["send_claim_s"])


def _channel(db: Database, channel_id: int) -> dict:
    with db.connection() as conn:
        return tenant_store.get_channel(conn, channel_id=channel_id)


def _resolve_stranded(db, providers, row: dict, *, snapshot: Snapshot, report: ReconcileReport) -> None:
    """A send whose sender died: find out from the provider whether it went."""
    channel = _channel(db, row["channel_id"])
    started = row["attempt_started_at"] or row["created_at"]
    text = row["payload"].get("text") if row["kind"] == "text" else None
    found, pmid = SendLookup.UNKNOWN, None
    called = row["call_started_at"]
    if called is None or called < started:
        found = SendLookup.NOT_SENT    # the sender died before calling the provider: it never went
    elif text:   # a journal can only be matched by text: pins and files are left to the unknown path
        try:
            found, pmid = providers.for_channel(channel).find_sent(chat_id=row["chat_id"], text=text, since=started)
        except Exception as exc:   # the provider cannot be asked now: ask again when this claim runs out
            log.warning("reconcile: outbox %s lookup failed: %s", row["id"], type(exc).__name__)
    age_s = (datetime.now(timezone.utc) - started).total_seconds()
    with db.transaction() as conn:
        if found is SendLookup.SENT and pmid and message_store.provider_id_recorded(
                conn, channel_id=row["channel_id"], provider_message_id=pmid):
            found = SendLookup.UNKNOWN     # that journal entry is another send of ours with the same text
        if found is SendLookup.SENT and pmid:
            message_store.finish_outbox(conn, outbox_id=row["id"], status="sent", provider_message_id=pmid,
                                        delivery_status="sent", error=None, attempts=0)
            report.settled += 1
        elif found is SendLookup.NOT_SENT:
            message_store.finish_outbox(conn, outbox_id=row["id"], status="retrying", provider_message_id=None,
                                        delivery_status="pending", error="not sent before a crash; sending again",
                                        attempts=0, retry_in_s=0)
            report.waiting += 1
        elif age_s >= snapshot["message_sending_rules"]["unknown_after_s"]:
            message_store.finish_outbox(conn, outbox_id=row["id"], status="unknown", provider_message_id=None,
                                        delivery_status="unknown", attempts=0,
                                        error="the sender stopped mid-send and the provider cannot say if it went")
            message_store.flag_conversation(conn, conversation_id=row["conversation_id"])
            report.unknown += 1
        else:
            report.waiting += 1       # asked again once this claim runs out


def _resend(db, redis, providers, row: dict, *, snapshot: Snapshot, report: ReconcileReport) -> None:
    with db.transaction() as conn:
        conv = conversation_store.get_conversation(conn, conversation_id=row["conversation_id"], for_update=True)
        if row["author"] == "ai" and (conv["mode"] != "AI" or conv["mode_version"] != row["mode_version"]):
            message_store.suppress_outbox(conn, outbox_id=row["id"],
                                          reason=f"conversation became {conv['mode']} before it could be sent")
            report.suppressed += 1
            return
        channel = tenant_store.get_channel(conn, channel_id=row["channel_id"])
        if row["author"] == "ai" and message_store.unapplied_person_events(
                conn, channel_id=row["channel_id"], chat_id=row["chat_id"],
                event_types=provider_class(channel["provider"]).person_event_types):
            # The same fence as a first send: a person's message of this chat is acknowledged but not
            # applied (perhaps the agent's takeover from the phone): wait for it.
            message_store.requeue(conn, outbox_id=row["id"], in_s=0.5)
            report.waiting += 1
            return
    content = OutboundContent(**{k: tuple(v) if k == "parameters" else v for k, v in row["payload"].items()})
    outcome, _, _ = deliver(db, redis, providers, snapshot=snapshot, channel=channel,
                            chat_id=row["chat_id"], outbox_id=row["id"], conversation_id=row["conversation_id"],
                            content=content, attempts_before=row["attempts"], reference=row["idempotency_key"])
    report.resent += 1
    report.outcomes.append(outcome.value)


class OutboxDispatcher(PollingLoop):
    """Sends each queued message when its channel's turn comes, on a pool, and keeps the outbox settled.

    A channel sends one message at a time (the claim takes only its oldest, and none while one is in
    flight), so many channels are served at once and no thread waits for a slot that is not near.
    """

    def __init__(self, db: Database, redis, providers: ProviderRegistry, *, directives, pool_size: int = 8,
                 idle_s: float = 0.25, settle_every_s: float = 2.0, min_idle_s: float = 0.05) -> None:
        super().__init__("outbox-dispatcher", self._step, idle_s=idle_s, db=db)
        self.db, self.redis, self.providers, self.directives = db, redis, providers, directives
        self.pool_size, self.max_idle_s, self.settle_every_s = pool_size, idle_s, settle_every_s
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="send")
        self._in_flight: set[Future] = set()
        self._lock = threading.Lock()
        self._next_settle = 0.0
        # Sends due within this of each other go out in one claim: a channel's slot is met this late
        # at most, and many channels' slots do not make the loop poll the database at 100 Hz.
        self.min_idle_s = min_idle_s

    def _step(self) -> bool:
        snapshot = self.directives.current()
        if time.monotonic() >= self._next_settle:
            self._next_settle = time.monotonic() + self.settle_every_s
            settle_unsettled(self.db, self.providers, snapshot=snapshot)
        with self._lock:
            free = self.pool_size - len(self._in_flight)
        if free <= 0:
            return False
        rows = claim_due(self.db, snapshot=snapshot, limit=free)
        for row in rows:
            future = self._pool.submit(self._send, row, snapshot)
            with self._lock:
                self._in_flight.add(future)
            future.add_done_callback(self._finished)
        if len(rows) == free:       # the pool is full: claim again as soon as a send finishes
            self.wake_when_one_finishes()
            return True
        # Everything due now is claimed: sleep until the next queued send is due (a channel's pacing
        # slot), or a little while. A finishing send does not wake the loop: what it leaves behind is
        # queued with its own due time.
        with self.db.connection() as conn:
            due_in = message_store.next_due_in_s(conn)
        self.idle_s = self.max_idle_s if due_in is None else max(self.min_idle_s, min(self.max_idle_s, due_in))
        return False

    def _send(self, row: dict, snapshot: Snapshot) -> None:
        try:
            _resend(self.db, self.redis, self.providers, row, snapshot=snapshot, report=ReconcileReport())
        except Exception as exc:   # the claim runs out and the row is settled later; never its text in a log
            log.error("dispatch: outbox %s failed: %s", row["id"], type(exc).__name__)

    def _finished(self, future: Future) -> None:
        with self._lock:
            self._in_flight.discard(future)
        self.one_finished()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        return reconcile_outbox(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                snapshot=load_directives())

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
