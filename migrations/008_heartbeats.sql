-- Every background loop (event worker, responder, outbox dispatcher) says it is alive, so /health
-- can tell "nothing to do" from "nobody doing it".
CREATE TABLE loop_heartbeats (
    name        text PRIMARY KEY,           -- host:pid:loop
    loop        text NOT NULL,              -- webhook-worker | responder | outbox-dispatcher
    started_at  timestamptz NOT NULL DEFAULT now(),
    beat_at     timestamptz NOT NULL DEFAULT now()
);
