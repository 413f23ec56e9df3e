-- When the current attempt of a send started (the provider's journal and the unknown deadline count
-- from it, not from when the row was written), indexes on the send path and the tenant cascades,
-- and rows written before 007 given a claim so that the reconciler settles them.

ALTER TABLE outbox ADD COLUMN attempt_started_at timestamptz;
UPDATE outbox SET attempt_started_at = created_at, claimed_until = coalesce(claimed_until, created_at)
 WHERE status = 'pending';

CREATE INDEX messages_outbox_idx ON messages (outbox_id) WHERE outbox_id IS NOT NULL;
CREATE INDEX messages_webhook_event_idx ON messages (webhook_event_id) WHERE webhook_event_id IS NOT NULL;
CREATE INDEX outbox_conversation_idx ON outbox (organization_id, conversation_id);
