-- Journey events go onto the customer's event log (segments and journey waits read them
-- there); `logged` is set once each is. The rows written before this version are logged
-- by the runner's first pass.
ALTER TABLE journey_events ADD COLUMN logged BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS journey_events_unlogged ON journey_events (id) WHERE logged = 0;
