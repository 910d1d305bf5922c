-- Webhook destinations and their outbox, owned by prossimo-act. Stores written before
-- this crate owned its tables have them already (made by the store's own migrations) with
-- this shape, and keep them as they are.
-- SQLite: in the decisions file (decisions.db), beside the audiences whose changes the
-- outbox reports, so that a change and what it owes commit in one transaction.

-- Webhook destinations: segment changes, or the raw event stream through a filter.
CREATE TABLE IF NOT EXISTS destinations (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    filter     TEXT,
    enabled    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- The outbox: one row per message owed to a destination, written in the same transaction
-- as the change it reports, so nothing acknowledged is lost.
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY,
    destination_id  INTEGER NOT NULL,
    profile_id      INTEGER NOT NULL,
    webhook_id      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (destination_id, profile_id, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (destination_id, status, id);

CREATE TABLE IF NOT EXISTS delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery ON delivery_attempts (delivery_id);
