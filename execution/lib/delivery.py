"""Hand one recorded outbox row to its provider and record what happened: the one place a send is made.

Used by send_whatsapp_message (a first attempt) and reconcile_outbox (retries after an outage, and
the sends a crash left behind). The row is already written; no database connection is held while
waiting for the channel's pacing slot or while the provider answers.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

import psycopg2
import redis as redis_lib

from execution.lib import cpu_gate, message_store, tenant_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot
from execution.lib.errors import ProviderError, ProviderOutcomeUnknown, ProviderQuotaExceeded, ProviderRetryable
from execution.lib.guards import mark_sent_now, take_send_slot
from execution.lib.outbound import OutboundContent, SendOutcome, call_provider
from execution.lib.providers import ProviderRegistry

log = logging.getLogger(__name__)


# A slot at most this close is waited for in the sending thread; a later one is not: the send is
# scheduled for it and the thread serves other channels meanwhile.
WAIT_FOR_SLOT_MS = 150


def interval_ms(channel: dict, *, snapshot: Snapshot) -> int:
    """The provider's spacing between two sends on one number (message_sending_rules)."""
    sending = snapshot["message_sending_rules"]
    return sending["send_interval_ms"].get(channel["provider"], sending["default_send_interval_ms"])


# Without Redis, pacing falls back to this process's own record of each channel's next slot: sends
# from this process stay spaced (several processes could then come closer than the interval).
_local_next: dict[int, float] = {}
_local_lock = threading.Lock()


def _take_local_slot(channel_id: int, interval: int) -> int:
    with _local_lock:
        now = time.monotonic() * 1000
        wait = max(0.0, _local_next.get(channel_id, 0.0) - now)
        if wait > WAIT_FOR_SLOT_MS:
            return -int(wait)
        _local_next[channel_id] = now + wait + interval
        return int(wait)


def take_slot(redis: redis_lib.Redis | None, channel: dict, *, snapshot: Snapshot) -> int:
    """ms to wait for this channel's slot, or minus the ms until it when it is not worth waiting for."""
    interval = interval_ms(channel, snapshot=snapshot)
    if redis is None or interval <= 0:
        return _take_local_slot(channel["id"], interval) if interval > 0 else 0
    try:
        return take_send_slot(redis, channel["id"], interval_ms=interval, max_wait_ms=WAIT_FOR_SLOT_MS)
    except redis_lib.RedisError:
        log.warning("pacing: Redis unavailable; spacing this process's sends itself")
        return _take_local_slot(channel["id"], interval)


def _left_now(redis: redis_lib.Redis | None, channel: dict, *, snapshot: Snapshot) -> None:
    interval = interval_ms(channel, snapshot=snapshot)
    with _local_lock:
        _local_next[channel["id"]] = max(_local_next.get(channel["id"], 0.0), time.monotonic() * 1000 + interval)
    if redis is None:
        return
    try:
        mark_sent_now(redis, channel["id"], interval_ms=interval)
    except redis_lib.RedisError:
        pass


def retry_delay_s(attempts: int, *, snapshot: Snapshot) -> float:
    """Backoff before the next try of a send the provider could not take: 2, 4, 8 … s up to the directive's cap."""
    return float(min(snapshot["message_sending_rules"]["retry_backoff_max_s"], 2 ** max(attempts, 1)))


def deliver(
    db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, channel: dict, chat_id: str,
    outbox_id: int, conversation_id: int, content: OutboundContent, attempts_before: int = 0,
    give_up_at: datetime | None = None, reference: str | None = None,
) -> tuple[SendOutcome, str | None, str | None]:
    """Send one outbox row now if its channel's slot has come, else schedule it for the slot.

    Returns (outcome, provider id, error); QUEUED means it waits in the outbox, in the channel's order.
    """
    wait_ms = take_slot(redis, channel, snapshot=snapshot)
    if wait_ms < 0:
        with db.transaction() as conn:
            message_store.finish_outbox(conn, outbox_id=outbox_id, status="retrying", provider_message_id=None,
                                        delivery_status="pending", error=None, attempts=0,
                                        retry_in_s=-wait_ms / 1000)
        return SendOutcome.QUEUED, None, None
    status, delivery, pmid, error, outcome, retry_in = "sent", "pending", None, None, SendOutcome.SENT, None
    attempts = 1
    # From the slot to the provider's answer the thread does not queue for the reply gate again, or it
    # would leave late and the next send on the number, on time, would follow it too closely.
    with cpu_gate.waiting():
        if wait_ms:
            time.sleep(wait_ms / 1000)
        with db.connection() as conn:   # from here on a crash may have reached the provider: look before resending
            message_store.mark_calling(conn, outbox_id=outbox_id)
        try:
            result = call_provider(providers.for_channel(channel), chat_id, content, reference=reference)
            pmid, delivery, attempts = result.provider_message_id, result.delivery_status, result.attempts
        except ProviderError as exc:
            attempts = exc.attempts
            status, delivery, error, outcome, retry_in = _outcome_of(exc, attempts_before, snapshot)
        finally:
            # The provider had the request at the latest when it answered: the next send on this number
            # waits a whole interval from here, however late this one left.
            _left_now(redis, channel, snapshot=snapshot)
    try:
        _record(db, outbox_id, conversation_id, channel, status, delivery, pmid, error, retry_in, attempts)
    except psycopg2.IntegrityError:
        # The provider's id is already on another row of ours (an echo settled the wrong one): record
        # this send as unknown for the agent to look at rather than lose what happened.
        status, delivery, error, outcome = "unknown", "unknown", "provider id already recorded on another send", \
            SendOutcome.UNKNOWN
        _record(db, outbox_id, conversation_id, channel, status, delivery, None, error, None, attempts)
    log.info("send outbox=%s channel=%s outcome=%s", outbox_id, channel["id"], outcome.value)
    return outcome, pmid, error


def _outcome_of(exc: ProviderError, attempts_before: int, snapshot: Snapshot):
    """(status, delivery status, error, outcome, retry in s) for a provider call that raised."""
    if isinstance(exc, ProviderOutcomeUnknown):
        return "unknown", "unknown", str(exc), SendOutcome.UNKNOWN, None
    if isinstance(exc, ProviderQuotaExceeded):
        return "failed", "failed", f"{exc} {exc.detail or ''}".strip(), SendOutcome.QUOTA_EXCEEDED, None
    if isinstance(exc, ProviderRetryable):
        # The provider did not take it (down, rate-limited): keep it queued, in order, until the horizon.
        return "retrying", "pending", str(exc), SendOutcome.QUEUED, retry_delay_s(attempts_before + 1,
                                                                                   snapshot=snapshot)
    return "failed", "failed", str(exc), SendOutcome.FAILED, None


def _record(db: Database, outbox_id: int, conversation_id: int, channel: dict, status: str, delivery: str,
            pmid: str | None, error: str | None, retry_in: float | None, attempts: int) -> None:
    with db.transaction() as conn:
        message_store.finish_outbox(conn, outbox_id=outbox_id, status=status, provider_message_id=pmid,
                                    delivery_status=delivery, error=error, retry_in_s=retry_in, attempts=attempts)
        tenant_store.record_send_health(conn, channel_id=channel["id"], ok=status == "sent", error=error)
        if status in ("failed", "unknown"):
            message_store.flag_conversation(conn, conversation_id=conversation_id)
