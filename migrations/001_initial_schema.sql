-- Core tables: tenants, channels, leads, conversations, messages, webhook intake, outbox, audit.
-- Every tenant-owned row carries organization_id; every idempotency key has a UNIQUE constraint.

CREATE TABLE organizations (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            text NOT NULL CHECK (email = lower(email) AND position('@' in email) > 1),
    name             text NOT NULL,
    password_hash    text,
    phone            text,                       -- the agent's own WhatsApp number, for alerts
    role             text NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'admin')),
    language         text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'ar')),
    persona          text NOT NULL DEFAULT 'friendly',
    instructions     text NOT NULL DEFAULT '',   -- the agent's own notes for the assistant
    timezone         text NOT NULL DEFAULT 'Africa/Cairo',
    working_hours    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (email),
    UNIQUE (organization_id, id)
);

CREATE TABLE channels (
    id                   bigserial PRIMARY KEY,
    organization_id      bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id             bigint NOT NULL,
    provider             text NOT NULL CHECK (provider IN ('green_api', 'sandbox', 'meta', 'twilio')),
    instance_id          text NOT NULL,          -- Green API idInstance, Meta phone_number_id, ...
    api_url              text,
    api_token_encrypted  text,                   -- never stored in the clear
    webhook_token_hash   text,                   -- sha256 of the webhook bearer token
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    provider_state       text,                   -- last stateInstanceChanged: authorized, blocked, ...
    provider_state_at    timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, instance_id),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, agent_id) REFERENCES agents (organization_id, id) ON DELETE CASCADE
);

CREATE TABLE contacts (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    phone            text NOT NULL,              -- digits only, international, no '+'; or the opaque id
    display_name     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, phone),
    UNIQUE (organization_id, id)
);

CREATE TABLE conversations (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id         bigint NOT NULL,
    channel_id       bigint NOT NULL,
    contact_id       bigint,
    chat_id          text NOT NULL,              -- opaque: ...@c.us, ...@g.us, ...@lid
    is_group         boolean NOT NULL DEFAULT false,
    title            text,
    mode             text NOT NULL DEFAULT 'AI' CHECK (mode IN ('AI', 'HUMAN')),
    mode_version     integer NOT NULL DEFAULT 0 CHECK (mode_version >= 0),
    mode_changed_at  timestamptz,
    mode_reason      text,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'archived')),
    unread_count     integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    lead_score       integer CHECK (lead_score BETWEEN 0 AND 100),
    preferences      jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_inbound_at  timestamptz,
    last_message_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, chat_id),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, agent_id) REFERENCES agents (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, channel_id) REFERENCES channels (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, contact_id) REFERENCES contacts (organization_id, id)
);
CREATE INDEX conversations_inbox_idx ON conversations (agent_id, last_message_at DESC NULLS LAST);

CREATE TABLE webhook_events (
    id             bigserial PRIMARY KEY,
    provider       text NOT NULL CHECK (provider IN ('green_api', 'sandbox', 'meta', 'twilio')),
    channel_id     bigint REFERENCES channels (id) ON DELETE SET NULL,
    event_key      text NOT NULL,                -- from the provider's ids, never from the clock
    event_type     text NOT NULL,
    payload        jsonb NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'done', 'failed', 'ignored')),
    attempts       integer NOT NULL DEFAULT 0,
    available_at   timestamptz NOT NULL DEFAULT now(),   -- not claimed before this (backoff)
    lease_until    timestamptz,                          -- a claim expires here
    claim_token    uuid,                                 -- who holds the current claim
    last_error     text,
    received_at    timestamptz NOT NULL DEFAULT now(),
    processed_at   timestamptz,
    UNIQUE (provider, event_key)
);
CREATE INDEX webhook_events_claim_idx ON webhook_events (available_at, id)
    WHERE status IN ('pending', 'processing');
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at);

CREATE TABLE outbox (
    id                   bigserial PRIMARY KEY,
    organization_id      bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id      bigint NOT NULL,
    channel_id           bigint NOT NULL,
    idempotency_key      text NOT NULL UNIQUE,   -- reply:{inbound_id}, followup:{id}, agent:{uuid}, ...
    kind                 text NOT NULL CHECK (kind IN ('text', 'file', 'location')),
    author               text NOT NULL CHECK (author IN ('ai', 'agent', 'system')),
    payload              jsonb NOT NULL,
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sent', 'failed', 'unknown')),
    mode_version         integer,                -- the fence value the AI send was checked against
    provider_message_id  text,
    attempts             integer NOT NULL DEFAULT 0,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz,
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, channel_id) REFERENCES channels (organization_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX outbox_provider_message_idx ON outbox (channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

CREATE TABLE messages (
    id                   bigserial PRIMARY KEY,
    organization_id      bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id      bigint NOT NULL,
    direction            text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    author               text NOT NULL CHECK (author IN ('customer', 'ai', 'agent', 'system')),
    sender_id            text,                   -- the participant in group chats
    message_type         text NOT NULL DEFAULT 'text',
    body                 text,
    media                jsonb,
    provider_message_id  text,
    quoted_provider_id   text,                   -- the message this one quotes, reacts to, edits or deletes
    delivery_status      text CHECK (delivery_status IN
                         ('pending', 'sent', 'delivered', 'read', 'failed', 'no_account', 'unknown', 'suppressed')),
    status_detail        text,
    directive_versions   jsonb,
    outbox_id            bigint REFERENCES outbox (id) ON DELETE SET NULL,
    webhook_event_id     bigint REFERENCES webhook_events (id) ON DELETE SET NULL,
    provider_timestamp   timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_provider_id_idx ON messages (conversation_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_timeline_idx ON messages (conversation_id, id);

CREATE TABLE audit_log (
    id               bigserial PRIMARY KEY,
    organization_id  bigint REFERENCES organizations (id) ON DELETE CASCADE,
    actor            text NOT NULL,              -- inbox:<agent id>, phone_reply, cli, system, ...
    action           text NOT NULL,
    entity           text NOT NULL,
    entity_id        bigint,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, created_at);
