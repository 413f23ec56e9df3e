-- The agent's inbox: login sessions, and a per-agent event feed that every writer of messages,
-- delivery statuses, mode changes and escalations feeds through triggers (so the worker, the CLI
-- and every web process produce the same events, and a reconnecting tab resumes from an id).

ALTER TABLE agents ADD COLUMN disabled_at timestamptz;

CREATE TABLE agent_sessions (
    id               bigserial PRIMARY KEY,
    token_hash       text NOT NULL UNIQUE,          -- sha256 of the cookie's random token
    organization_id  bigint NOT NULL,
    agent_id         bigint NOT NULL,
    csrf_token       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    FOREIGN KEY (organization_id, agent_id) REFERENCES agents (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX agent_sessions_agent_idx ON agent_sessions (agent_id) WHERE revoked_at IS NULL;

CREATE TABLE inbox_events (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL,
    agent_id         bigint NOT NULL,
    conversation_id  bigint NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('message', 'delivery', 'mode', 'escalation')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX inbox_events_agent_idx ON inbox_events (agent_id, id);
CREATE INDEX inbox_events_org_idx ON inbox_events (organization_id, id);

CREATE FUNCTION inbox_event(conversation bigint, what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_events (organization_id, agent_id, conversation_id, kind)
    SELECT c.organization_id, c.agent_id, c.id, what FROM conversations c WHERE c.id = conversation;
END $$;

CREATE FUNCTION inbox_message_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM inbox_event(NEW.conversation_id, CASE WHEN NEW.message_type = 'mode_change' THEN 'mode' ELSE 'message' END);
    ELSIF NEW.delivery_status IS DISTINCT FROM OLD.delivery_status THEN
        PERFORM inbox_event(NEW.conversation_id, 'delivery');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_inbox_event AFTER INSERT OR UPDATE OF delivery_status ON messages
    FOR EACH ROW EXECUTE FUNCTION inbox_message_event();

CREATE FUNCTION inbox_escalation_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM inbox_event(NEW.conversation_id, 'escalation');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER escalations_inbox_event AFTER INSERT OR UPDATE OF status ON escalations
    FOR EACH ROW EXECUTE FUNCTION inbox_escalation_event();
