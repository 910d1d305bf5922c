-- Prossimo's embedded schema. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A source is one origin of messages (a website, an app, a till export), with its write key.
CREATE TABLE sources (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    write_key  TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Admin tokens are stored as SHA-256 hashes; the prefix helps a person tell them apart.
CREATE TABLE admin_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- One row per profile ever created. A merged profile points at its surviving root; its own
-- state is no longer read. `state` is the identity crate's ProfileState as JSON.
CREATE TABLE profiles (
    id          INTEGER PRIMARY KEY,
    merged_into INTEGER,
    state       TEXT NOT NULL,
    name_lc     TEXT,
    first_seen  INTEGER,
    last_seen   INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX profiles_merged_into ON profiles (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX profiles_name ON profiles (name_lc) WHERE name_lc IS NOT NULL;

-- Every identifier belongs to exactly one root profile.
CREATE TABLE identifiers (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX identifiers_profile ON identifiers (profile_id);
CREATE INDEX identifiers_value ON identifiers (value);

-- The auditable identity log: merges, refused merges and ignored identifier values.
CREATE TABLE identity_log (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    profile_id       INTEGER NOT NULL,
    other_profile_id INTEGER,
    message_id       TEXT NOT NULL,
    at               INTEGER NOT NULL,
    detail           TEXT NOT NULL,
    logged_at        INTEGER NOT NULL
);
CREATE INDEX identity_log_profile ON identity_log (profile_id);
CREATE INDEX identity_log_other ON identity_log (other_profile_id) WHERE other_profile_id IS NOT NULL;

-- The event log. `profile_id` is the profile the event was resolved to when it arrived;
-- a profile's timeline is the union over the profiles merged into it.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    profile_id  INTEGER NOT NULL,
    type        TEXT NOT NULL,
    event       TEXT,
    channel     TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    revenue     REAL,
    currency    TEXT,
    body        TEXT NOT NULL
);
CREATE UNIQUE INDEX events_dedup ON events (source_id, message_id);
CREATE INDEX events_timeline ON events (profile_id, ts);
