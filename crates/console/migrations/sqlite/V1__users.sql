-- The console's users and sessions. Stores written before the console owned its tables
-- have them already (the store's V5 made them), with this shape: kept as they are.
-- People who sign in to the console. `password_hash` is a PHC string (argon2id); the
-- store never sees a password. `role` is admin, marketer or viewer.
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

-- Console sign-ins. The cookie holds a random token; only its SHA-256 is stored. `csrf`
-- is the token every form of the session must carry.
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (user_id);
CREATE INDEX IF NOT EXISTS console_sessions_expiry ON console_sessions (expires_at);
