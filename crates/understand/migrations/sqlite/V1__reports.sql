-- The latest result of each analysis (and `last_run`, the server's latest run), owned by
-- prossimo-understand. Stores written before this crate owned the table have it already
-- (made by the store's own migrations) with this shape, and keep it as it is.
CREATE TABLE IF NOT EXISTS analyses (
    name        TEXT PRIMARY KEY,
    result      TEXT NOT NULL,
    computed_at INTEGER NOT NULL
);
