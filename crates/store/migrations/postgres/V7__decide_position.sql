-- The decider's read position gets a table of its own (it was two rows of `settings`),
-- as on SQLite, where it lives in the decisions file with the rest of the decider's
-- writes.
CREATE TABLE decide_position (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    event_seq BIGINT NOT NULL,
    log_id    BIGINT NOT NULL
);
INSERT INTO decide_position (id, event_seq, log_id)
SELECT 1,
       COALESCE((SELECT value::BIGINT FROM settings WHERE key = 'decide.event_seq'), 0),
       COALESCE((SELECT value::BIGINT FROM settings WHERE key = 'decide.log_id'), 0)
WHERE EXISTS (SELECT 1 FROM settings WHERE key LIKE 'decide.%');
DELETE FROM settings WHERE key LIKE 'decide.%';
