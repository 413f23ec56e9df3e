-- Who answers, and when: the burst window's due time, the inbox flag, escalations and follow-ups.

ALTER TABLE conversations
    ADD COLUMN reply_due_at        timestamptz,   -- answer the unanswered customer messages at this time
    ADD COLUMN reply_pending_since timestamptz,   -- the first unanswered message (the burst cap counts from it)
    ADD COLUMN reply_claim_until   timestamptz,   -- a responder is on it until then (lease)
    ADD COLUMN needs_attention     boolean NOT NULL DEFAULT false;  -- the inbox flag
CREATE INDEX conversations_reply_due_idx ON conversations (reply_due_at) WHERE reply_due_at IS NOT NULL;

CREATE TABLE escalations (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id  bigint NOT NULL,
    message_id       bigint NOT NULL,             -- the customer message that triggered it
    rule             text NOT NULL,
    category         text NOT NULL CHECK (category IN ('negotiation', 'human_request', 'legal', 'complaint', 'out_of_scope')),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    alert_status     text NOT NULL DEFAULT 'pending' CHECK (alert_status IN ('pending', 'sent', 'failed', 'no_phone')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    UNIQUE (conversation_id, message_id),
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id) ON DELETE CASCADE
);

CREATE TABLE followups (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id  bigint NOT NULL,
    kind             text NOT NULL,
    due_at           timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'cancelled')),
    idempotency_key  text NOT NULL UNIQUE,
    cancel_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX followups_due_idx ON followups (due_at) WHERE status = 'pending';
CREATE INDEX followups_conversation_idx ON followups (conversation_id) WHERE status = 'pending';
