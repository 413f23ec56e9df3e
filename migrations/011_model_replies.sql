-- How each AI reply was written: backend, model, tokens (cache included), latency, tool calls, and the
-- grounding guard's outcome with its reason codes. Shown to the agent beside the message.
ALTER TABLE messages ADD COLUMN generation jsonb;

-- The model backends' last outcome, for /health: a rejected call (bad key, unknown model, bad request)
-- is a configuration error an operator must see; an outage is answered by the offline responder.
CREATE TABLE model_health (
    backend          text PRIMARY KEY,       -- claude | openai_compatible
    model            text NOT NULL,
    last_ok_at       timestamptz,
    last_error_at    timestamptz,
    last_error_kind  text,                   -- rejected | unavailable
    last_error       text,                   -- HTTP status and error type; never request or customer text
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The agent's persona style is one the model_replies directive describes; whether Arabic replies
-- use Arabic-Indic digits is the agent's choice (NULL: message_sending_rules.arabic_digits).
ALTER TABLE agents ADD CONSTRAINT agents_persona_style
    CHECK (persona IN ('professional', 'friendly', 'casual', 'premium'));
ALTER TABLE agents ADD COLUMN arabic_digits boolean;

-- What the customer told the assistant about themselves and what they want (save_lead_details):
-- name, budget, areas, bedrooms, timeline, financing, buy or rent.
ALTER TABLE conversations ADD COLUMN lead jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Why a conversation was escalated: the rule's match, or the model's stated reason.
ALTER TABLE escalations ADD COLUMN reason text;
