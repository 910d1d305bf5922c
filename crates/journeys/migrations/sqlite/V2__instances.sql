-- Journeys' instances: each person's way through a version of a journey, where it waits
-- (with its timer) or how it ended; the steps it took (the audit trail, and the counts per
-- step); and what it sent, once per instance and step (the idempotency key).

CREATE TABLE IF NOT EXISTS journey_instances (
    id           INTEGER PRIMARY KEY,
    journey_id   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    profile_id   INTEGER NOT NULL,
    instance_key TEXT,
    entered_at   INTEGER NOT NULL,
    state        TEXT NOT NULL,
    step         TEXT,
    due          INTEGER,
    exit_reason  TEXT,
    ended_at     INTEGER
);
CREATE INDEX IF NOT EXISTS journey_instances_due ON journey_instances (due) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS journey_instances_profile ON journey_instances (profile_id, journey_id);
CREATE INDEX IF NOT EXISTS journey_instances_journey ON journey_instances (journey_id, state);

CREATE TABLE IF NOT EXISTS journey_steps (
    id          INTEGER PRIMARY KEY,
    instance_id INTEGER NOT NULL,
    journey_id  INTEGER NOT NULL,
    profile_id  INTEGER NOT NULL,
    step        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    at          INTEGER NOT NULL
);
-- A journey cannot loop, so an instance takes each step once: recording the same input
-- twice records its steps once.
CREATE UNIQUE INDEX IF NOT EXISTS journey_steps_instance ON journey_steps (instance_id, step);
CREATE INDEX IF NOT EXISTS journey_steps_journey ON journey_steps (journey_id, step, outcome);

CREATE TABLE IF NOT EXISTS journey_sends (
    idempotency_key TEXT NOT NULL PRIMARY KEY,
    instance_id     INTEGER NOT NULL,
    journey_id      INTEGER NOT NULL,
    profile_id      INTEGER NOT NULL,
    step            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    message         TEXT NOT NULL,
    topic           TEXT,
    transactional   INTEGER NOT NULL,
    status          TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_sends_owed ON journey_sends (created_at) WHERE status = 'owed';
CREATE INDEX IF NOT EXISTS journey_sends_profile ON journey_sends (profile_id, created_at);
