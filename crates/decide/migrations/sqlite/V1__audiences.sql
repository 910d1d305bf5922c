-- Audiences and their membership log, owned by prossimo-decide. Stores written before
-- this crate owned its tables have them already (made by the store's own migrations) with
-- this shape, and keep them as they are.
-- SQLite: in the decisions file (decisions.db), beside the outbox, so that a membership
-- change and the deliveries it owes commit in one transaction.

-- Audiences: a definition in the segment language (docs/segments.md) under a stable slug.
CREATE TABLE IF NOT EXISTS segments (
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
CREATE TABLE IF NOT EXISTS membership_changes (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    entered    INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    first_fill INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS membership_changes_profile ON membership_changes (profile_id, segment_id, id);
CREATE INDEX IF NOT EXISTS membership_changes_segment ON membership_changes (segment_id, id);

-- Size over time: the latest size of a segment in each hour it changed.
CREATE TABLE IF NOT EXISTS segment_sizes (
    segment_id INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (segment_id, hour)
);

-- How far the decider has read the event and identity logs; one row once it has run.
CREATE TABLE IF NOT EXISTS decide_position (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    event_seq INTEGER NOT NULL,
    log_id    INTEGER NOT NULL
);
