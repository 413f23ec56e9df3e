-- When the provider call of the current attempt began: a send whose sender died before that moment
-- certainly never reached the provider, so it is sent again at once instead of being looked for.
ALTER TABLE outbox ADD COLUMN call_started_at timestamptz;
