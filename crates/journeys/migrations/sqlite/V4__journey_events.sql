-- What happened to each instance, as the customer's timeline shows it: entered, each step
-- completed (and which way it went), exited (and why). It replaces journey_steps, whose
-- rows it takes over; once per instance, event and step (a journey cannot loop), so
-- recording the same input twice records it once.
CREATE TABLE IF NOT EXISTS journey_events (
    id          INTEGER PRIMARY KEY,
    instance_id INTEGER NOT NULL,
    journey_id  INTEGER NOT NULL,
    profile_id  INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    step        TEXT NOT NULL,
    outcome     TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS journey_events_once ON journey_events (instance_id, event, step);
CREATE INDEX IF NOT EXISTS journey_events_profile ON journey_events (profile_id, at, id);
CREATE INDEX IF NOT EXISTS journey_events_journey ON journey_events (journey_id, event, step, outcome);

INSERT INTO journey_events (instance_id, journey_id, profile_id, at, event, step, outcome)
SELECT instance_id, journey_id, profile_id, at, 'Journey Step Completed', step, outcome
FROM journey_steps ORDER BY id;
DROP TABLE journey_steps;
