-- Consent per person, channel and topic (`*`: every topic of the channel), as it stands and
-- with its history: who or what changed it (an unsubscribe link, the API, a bounce) and
-- when. And the secrets the messages' links are signed with.
CREATE TABLE IF NOT EXISTS consents (
    profile_id INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    state      TEXT NOT NULL,
    source     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (profile_id, channel, topic)
);

CREATE TABLE IF NOT EXISTS consent_changes (
    id         INTEGER PRIMARY KEY,
    profile_id INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    state      TEXT NOT NULL,
    source     TEXT NOT NULL,
    detail     TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_changes_profile ON consent_changes (profile_id, id);

CREATE TABLE IF NOT EXISTS message_secrets (
    name       TEXT NOT NULL PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
