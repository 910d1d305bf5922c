-- Messages, owned by prossimo-messages. SQLite: in the decisions file (decisions.db),
-- beside the journeys whose steps owe sends, so that a step and its send commit together.

-- The messages marketers write (Liquid subject and body), by slug.
CREATE TABLE IF NOT EXISTS message_templates (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    channel     TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The outbox: every send owed to someone, once per idempotency key (a journey's instance
-- and step), and what became of it: owed (due at `due`), sending (handed to the channel),
-- sent, skipped (why in `reason`), failed (why), uncertain (the process stopped while it
-- was being handed over: not sent again, so never twice). `logged` is set once its
-- outcome is an event on the customer's timeline.
CREATE TABLE IF NOT EXISTS message_sends (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    profile_id      INTEGER NOT NULL,
    origin          TEXT NOT NULL,
    journey_id      INTEGER,
    step            TEXT,
    channel         TEXT NOT NULL,
    template        TEXT NOT NULL,
    topic           TEXT,
    transactional   INTEGER NOT NULL,
    context         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    due             INTEGER NOT NULL,
    recipient       TEXT,
    message_id      TEXT,
    reason          TEXT,
    detail          TEXT,
    logged          INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS message_sends_due ON message_sends (due, id) WHERE status = 'owed';
CREATE INDEX IF NOT EXISTS message_sends_unlogged ON message_sends (id) WHERE logged = 0 AND status NOT IN ('owed', 'sending');
CREATE INDEX IF NOT EXISTS message_sends_profile ON message_sends (profile_id, id);
CREATE INDEX IF NOT EXISTS message_sends_journey ON message_sends (journey_id, step, status);
