-- Journeys, owned by prossimo-journeys. SQLite: in the decisions file (decisions.db),
-- beside the audiences whose changes start and move instances, so that a change and the
-- steps it causes commit in one transaction.

-- A journey: the draft being edited and which published version new instances enter.
CREATE TABLE IF NOT EXISTS journeys (
    id           INTEGER PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    state        TEXT NOT NULL,
    draft        TEXT NOT NULL,
    live_version INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Every published version, never changed: instances stay on the version they entered.
CREATE TABLE IF NOT EXISTS journey_versions (
    journey_id   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (journey_id, version)
);

-- What happened to each journey: created, edited, published (with its version), paused,
-- resumed, archived; by whom.
CREATE TABLE IF NOT EXISTS journey_changes (
    id         INTEGER PRIMARY KEY,
    journey_id INTEGER NOT NULL,
    action     TEXT NOT NULL,
    version    INTEGER,
    actor      TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_changes_journey ON journey_changes (journey_id, id);
