-- What a send that falls in quiet hours does: wait for the next allowed time (0, the
-- default) or be skipped (1).
ALTER TABLE message_sends ADD COLUMN skip_in_quiet_hours BIGINT NOT NULL DEFAULT 0;
