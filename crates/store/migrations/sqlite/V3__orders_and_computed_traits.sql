-- Order events (Segment e-commerce Order Completed / Refunded / Cancelled, and imported
-- orders), one row per stored message, with the value converted into the workspace's
-- reporting currency on arrival. An order's net value is folded from its rows when read,
-- so refunds and cancellations may arrive in any order. `profile_id` is the profile the
-- message was resolved to when it arrived, like events.profile_id.
CREATE TABLE order_events (
    seq        INTEGER PRIMARY KEY,
    source_id  INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    profile_id INTEGER NOT NULL,
    order_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    -- Reporting currency; NULL on a refund or cancellation means "all of the order".
    value      REAL,
    amount     REAL,
    currency   TEXT
);
CREATE INDEX order_events_profile ON order_events (profile_id);

-- Traits computed by analyses (RFM, predictions, cluster): the latest per profile.
CREATE TABLE computed_traits (
    profile_id  INTEGER PRIMARY KEY,
    traits      TEXT NOT NULL,
    computed_at INTEGER NOT NULL
);

-- The latest result of each analysis (fitted models, reports), as JSON.
CREATE TABLE analyses (
    name        TEXT PRIMARY KEY,
    result      TEXT NOT NULL,
    computed_at INTEGER NOT NULL
);
