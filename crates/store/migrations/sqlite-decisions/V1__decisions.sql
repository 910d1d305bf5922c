-- The decisions file (`decisions.db`, attached as `decisions`): what the platform decided
-- about its customers, written by the decider, the dispatcher and the API under this
-- file's own write lock, beside the customer file (`prossimo.db`) that ingestion writes.
-- Stores from before the split had these tables in the customer file; opening such a
-- store copies them here and drops them there (`move_decisions` in lib.rs).

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

-- Memberships as a log of changes, one row each. A decide step appends rows and touches
-- one random index entry per profile (all of a profile's changes share a leaf of
-- membership_changes_profile). A profile is a member of a segment while its latest row
-- for it says entered. The timeline shows the rows as Segment Entered / Segment Exited
-- events (not the first members of a new segment: first_fill = 1).
CREATE TABLE membership_changes (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    entered    INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    first_fill INTEGER NOT NULL
);
CREATE INDEX membership_changes_profile ON membership_changes (profile_id, segment_id, id);
CREATE INDEX membership_changes_segment ON membership_changes (segment_id, id);

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

-- How far the decider has read the event and identity logs; one row once it has run.
CREATE TABLE decide_position (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    event_seq INTEGER NOT NULL,
    log_id    INTEGER NOT NULL
);
