-- Where the journey runner has read the event log up to: saved in the transaction of what
-- the events it read caused, so after a crash it reads again exactly what was not done.
CREATE TABLE IF NOT EXISTS journey_cursor (
    id        BIGINT PRIMARY KEY,
    event_seq BIGINT NOT NULL
);
