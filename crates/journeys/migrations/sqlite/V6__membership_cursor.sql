-- Where the journey runner has read the audiences' change log up to (audience-entered and
-- audience-exited triggers), saved with what the changes caused. NULL until the runner
-- first starts with it: it then begins at the log's head.
ALTER TABLE journey_cursor ADD COLUMN membership_seq INTEGER;
