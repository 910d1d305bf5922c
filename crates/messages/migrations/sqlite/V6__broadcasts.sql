-- One-off sends of a message to an audience's members. The sender owes them in chunks,
-- resuming after `cursor` (the membership log position of the last member owed), so a
-- stop part-way through carries on where it was and owes nobody twice.
CREATE TABLE IF NOT EXISTS message_broadcasts (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    audience            TEXT NOT NULL,
    segment_id          INTEGER NOT NULL,
    message             TEXT NOT NULL,
    channel             TEXT NOT NULL,
    topic               TEXT,
    transactional       INTEGER NOT NULL,
    skip_in_quiet_hours INTEGER NOT NULL,
    state               TEXT NOT NULL,
    cursor              INTEGER,
    owed                INTEGER NOT NULL DEFAULT 0,
    created_by          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    owed_at             INTEGER
);
CREATE INDEX IF NOT EXISTS message_broadcasts_owing ON message_broadcasts (state, id);

ALTER TABLE message_sends ADD COLUMN broadcast_id INTEGER;
CREATE INDEX IF NOT EXISTS message_sends_broadcast ON message_sends (broadcast_id, status);
