"""The one way a conversation's mode changes: mode, mode_version + 1, timeline entry, audit row."""

from __future__ import annotations

from dataclasses import dataclass

from execution.lib import conversation_store, escalation_store, followup_store, message_store, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import NotFound

MODES = ("AI", "HUMAN")


@dataclass(frozen=True)
class ModeChange:
    conversation_id: int
    mode: str
    mode_version: int
    changed: bool
    actor: str
    reason: str
    followups_cancelled: int = 0


def apply_mode_change(
    conn: Connection,
    *,
    conversation_id: int,
    mode: str,
    actor: str,
    reason: str,
    brief: str | None = None,
    cancel_followups: bool = True,
) -> ModeChange:
    """One short transaction (a savepoint inside a caller's); the toggle never waits for a generation.

    Taking over also drops a scheduled reply and, with `cancel_followups`, the pending follow-ups.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    with transaction(conn):
        row = conversation_store.change_mode(conn, conversation_id=conversation_id, mode=mode, reason=reason)
        if row is None:
            current = conversation_store.get_conversation(conn, conversation_id=conversation_id)
            if current is None:
                raise NotFound(f"conversation {conversation_id} does not exist")
            return ModeChange(conversation_id, current["mode"], current["mode_version"], False, actor, reason)
        cancelled = 0
        if mode == "AI":
            escalation_store.resolve_escalations(conn, conversation_id=conversation_id)
        if mode == "HUMAN":
            conversation_store.clear_reply(conn, conversation_id=conversation_id)
            if cancel_followups:
                cancelled = followup_store.cancel_followups(conn, conversation_id=conversation_id, reason=f"mode HUMAN: {reason}")
        details = {"mode": mode, "actor": actor, "reason": reason, "mode_version": row["mode_version"]}
        if brief:
            details["brief"] = brief
        message_store.insert_message(
            conn,
            organization_id=row["organization_id"],
            conversation_id=conversation_id,
            direction="internal",
            author="system",
            message_type="mode_change",
            media=details,
        )
        tenant_store.insert_audit(
            conn,
            organization_id=row["organization_id"],
            actor=actor,
            action=f"set_mode_{mode.lower()}",
            entity="conversation",
            entity_id=conversation_id,
            details={"reason": reason, "mode_version": row["mode_version"], "followups_cancelled": cancelled},
        )
    return ModeChange(conversation_id, mode, row["mode_version"], True, actor, reason, cancelled)
