-- What triggered each instance (the event's type, name, channel and properties), which
-- its messages render over. Sends now go to the messages' outbox (message_sends, owned by
-- prossimo-messages), which delivers them; journey_sends only ever held sends owed before
-- any channel existed, which nothing delivered.
ALTER TABLE journey_instances ADD COLUMN trigger_event TEXT;
DROP TABLE IF EXISTS journey_sends;
