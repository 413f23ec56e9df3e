-- Viewings (one agent never double-booked), the jobs that are due at a time (reminders, feedback
-- questions), and the agent's calendar feed. Additive only: the previous release runs unchanged.

-- Durable jobs: a row written in the same transaction as what caused it, claimed with a lease
-- (FOR UPDATE SKIP LOCKED), retried with a bound, run once per key.
CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind ~ '^[a-z_]{3,40}$'),
    key              text NOT NULL UNIQUE,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    run_at           timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'done', 'skipped', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 50),
    claim_token      uuid,
    lease_until      timestamptz,
    outcome          text,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE status = 'pending';
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_org_idx ON jobs (organization_id);

-- The agent's own viewing rules (NULL: the viewing_rules directive's defaults) and calendar feed.
ALTER TABLE agents ADD COLUMN viewing_rules jsonb;
ALTER TABLE agents ADD COLUMN calendar_token_hash text UNIQUE;

-- A listing may say when it can be visited (e.g. {"sat": ["10:00", "14:00"]}); NULL: any working hour.
ALTER TABLE properties ADD COLUMN viewing_windows jsonb;

-- Periods an agent cannot show anything (leave, a closing): no slot is offered inside one.
CREATE TABLE agent_blocked_periods (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id         bigint NOT NULL,
    during           tstzrange NOT NULL CHECK (NOT isempty(during)),
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, agent_id) REFERENCES agents (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX agent_blocked_periods_agent_idx ON agent_blocked_periods (agent_id);

CREATE TABLE viewings (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id         bigint NOT NULL,
    conversation_id  bigint NOT NULL,
    property_id      bigint NOT NULL REFERENCES properties (id) ON DELETE CASCADE,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    blocked_until    timestamptz NOT NULL,        -- ends_at + the agent's buffer: the next viewing starts after
    status           text NOT NULL DEFAULT 'booked'
                     CHECK (status IN ('booked', 'confirmed', 'moved', 'cancelled', 'done')),
    booked_by        text NOT NULL,               -- assistant | agent:<id> | cli
    language         text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'ar', 'arabizi')),
    moved_to         bigint REFERENCES viewings (id),
    cancel_reason    text,
    feedback         text,
    feedback_at      timestamptz,
    feedback_asked_at timestamptz,
    idempotency_key  text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at AND blocked_until >= ends_at),
    FOREIGN KEY (organization_id, agent_id) REFERENCES agents (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id) ON DELETE CASCADE,
    -- No double booking, whatever races: core gist handles int8range equality (no btree_gist needed).
    CONSTRAINT viewings_no_overlap EXCLUDE USING gist (
        int8range(agent_id, agent_id, '[]') WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&
    ) WHERE (status IN ('booked', 'confirmed'))
);
CREATE INDEX viewings_agent_time_idx ON viewings (agent_id, starts_at);
CREATE INDEX viewings_conversation_idx ON viewings (conversation_id, starts_at);
