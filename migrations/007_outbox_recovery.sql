-- Nothing is left pending forever: a send has a lease while it is with the provider, a send the
-- provider could not take is retried until a horizon, and each channel's sending health is kept.

ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'unknown', 'retrying', 'suppressed'));
ALTER TABLE outbox
    ADD COLUMN claimed_until   timestamptz,   -- a sender is with the provider until then; past it, a crash
    ADD COLUMN next_attempt_at timestamptz,   -- 'retrying': not before this
    ADD COLUMN give_up_at      timestamptz;   -- 'retrying': past this it fails and the agent is told
CREATE INDEX outbox_unsettled_idx ON outbox (channel_id, id) WHERE status IN ('pending', 'retrying');

ALTER TABLE channels
    ADD COLUMN send_failures      integer NOT NULL DEFAULT 0,   -- consecutive sends the provider refused or missed
    ADD COLUMN last_send_error    text,
    ADD COLUMN last_send_error_at timestamptz,
    ADD COLUMN last_sent_at       timestamptz;
