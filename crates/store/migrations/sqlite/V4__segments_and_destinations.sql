-- Audiences: a definition in the segment language (docs/segments.md) under a stable slug.
CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Membership intervals. A current member has `exited_at` NULL; history keeps the rest.
CREATE TABLE memberships (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    exited_at  INTEGER
);
CREATE UNIQUE INDEX memberships_current ON memberships (segment_id, profile_id) WHERE exited_at IS NULL;
CREATE INDEX memberships_profile ON memberships (profile_id);
CREATE INDEX memberships_segment ON memberships (segment_id, id);

-- Size over time: the latest size of a segment in each hour it changed.
CREATE TABLE segment_sizes (
    segment_id INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (segment_id, hour)
);

-- Webhook destinations: segment changes, or the raw event stream through a filter.
CREATE TABLE destinations (
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
CREATE TABLE deliveries (
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
CREATE INDEX deliveries_pending ON deliveries (destination_id, profile_id, id) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (destination_id, status, id);

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id);
