-- One channel interface: Meta's WhatsApp Cloud API beside Green API; agents' grammatical gender;
-- template sends; follow-ups owned by the agent (what the assistant promised on their behalf).

ALTER TABLE channels DROP CONSTRAINT channels_provider_check;
UPDATE channels SET provider = 'meta_cloud' WHERE provider = 'meta';
ALTER TABLE channels ADD CONSTRAINT channels_provider_check
    CHECK (provider IN ('green_api', 'sandbox', 'meta_cloud', 'twilio'));
-- A provider that signs its webhooks (Meta: the app secret) keeps the key here, encrypted.
ALTER TABLE channels ADD COLUMN webhook_secret_encrypted text;
CREATE INDEX channels_webhook_token_idx ON channels (provider, webhook_token_hash);

ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_provider_check;
UPDATE webhook_events SET provider = 'meta_cloud' WHERE provider = 'meta';
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_provider_check
    CHECK (provider IN ('green_api', 'sandbox', 'meta_cloud', 'twilio'));

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('text', 'file', 'location', 'template'));

-- Arabic replies agree with the agent's gender ("لأنه بيتابع" / "لأنها بتتابع").
ALTER TABLE agents ADD COLUMN gender text CHECK (gender IN ('female', 'male'));

-- 'assistant' follow-ups are messages the assistant will send (a takeover cancels them);
-- 'agent' follow-ups are tasks for the agent, e.g. what a reply promised the agent would do.
ALTER TABLE followups ADD COLUMN owner text NOT NULL DEFAULT 'assistant' CHECK (owner IN ('assistant', 'agent'));
ALTER TABLE followups ADD COLUMN message_id bigint;   -- the customer message that led to it
ALTER TABLE followups DROP CONSTRAINT followups_status_check;
ALTER TABLE followups ADD CONSTRAINT followups_status_check CHECK (status IN ('pending', 'sent', 'done', 'cancelled'));
