"""Settle every send that is not settled: retry what the provider could not take, resolve what a crash left.

Reads/writes: outbox (claims, status, attempts), messages (delivery status), conversations
(needs_attention), channels (send health). Runs every few seconds in the responder loop; by hand
it does one pass. Three steps, each row claimed with FOR UPDATE SKIP LOCKED so any number of
processes may run it:
1. `retrying` past message_sending_rules.retry_horizon_s → failed, the conversation flagged.
2. `pending` whose sender's claim ran out (it died mid-send) → ask the provider (Green API: the
   outgoing journal and the queue): sent → settled with its id; certainly not sent → sent again;
   cannot tell for unknown_after_s → `unknown`, flagged for the agent, never resent blindly.
3. `retrying` that is due → sent, only the oldest unsettled send of each channel at a time (order
   is kept), an AI message only if the conversation is still the AI's at the version it was
   written under (else kept as a suppressed draft).
Guard: the outbox row's claim; idempotency keys as written by send_whatsapp_message.

usage: python -m execution.reconcile_outbox
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from execution.lib import cli, conversation_store, message_store, tenant_store
from execution.lib.db import Database
from execution.lib.delivery import deliver
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import ProviderError
from execution.lib.outbound import OutboundContent
from execution.lib.providers import ProviderRegistry
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
    report = ReconcileReport()
    sending = snapshot["message_sending_rules"]
    with db.transaction() as conn:
        for row in message_store.expire_retries(conn):
            message_store.flag_conversation(conn, conversation_id=row["conversation_id"])
            report.expired += 1
    with db.transaction() as conn:
        stranded = message_store.claim_stranded(conn, limit=limit, claim_s=sending["send_claim_s"])
    for row in stranded:
        _resolve_stranded(db, providers, row, snapshot=snapshot, report=report)
    with db.transaction() as conn:
        due = message_store.claim_due_retries(conn, limit=limit, claim_s=sending["send_claim_s"])
    for row in due:
        _resend(db, redis, providers, row, snapshot=snapshot, report=report)
    return report


def _channel(db: Database, channel_id: int) -> dict:
    with db.connection() as conn:
        return tenant_store.get_channel(conn, channel_id=channel_id)


def _resolve_stranded(db, providers, row: dict, *, snapshot: Snapshot, report: ReconcileReport) -> None:
    """A send whose sender died: find out from the provider whether it went."""
    channel = _channel(db, row["channel_id"])
    try:
        found, pmid = providers.for_channel(channel).find_sent(
            chat_id=row["chat_id"], text=row["payload"].get("text"), since=row["created_at"])
    except ProviderError:
        found, pmid = SendLookup.UNKNOWN, None
    age_s = (datetime.now(timezone.utc) - row["created_at"]).total_seconds()
    with db.transaction() as conn:
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
    content = OutboundContent(**{k: tuple(v) if k == "parameters" else v for k, v in row["payload"].items()})
    outcome, _, _ = deliver(db, redis, providers, snapshot=snapshot, channel=_channel(db, row["channel_id"]),
                            chat_id=row["chat_id"], outbox_id=row["id"], conversation_id=row["conversation_id"],
                            content=content, attempts_before=row["attempts"])
    report.resent += 1
    report.outcomes.append(outcome.value)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        return reconcile_outbox(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                snapshot=load_directives())

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
