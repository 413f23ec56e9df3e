-- The chat each stored event is about (NULL when it names none), so that a takeover can find the
-- events of one chat that are received but not yet applied: the takeover fence.
ALTER TABLE webhook_events ADD COLUMN chat_id text;
CREATE INDEX webhook_events_open_chat_idx ON webhook_events (channel_id, chat_id)
    WHERE status IN ('pending', 'processing');
