-- Addresses and numbers that get nothing on a channel, whoever they belong to now: kept by
-- address, not by person, so a new profile with a bounced address is spared too.
CREATE TABLE IF NOT EXISTS message_suppressions (
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, address)
);
