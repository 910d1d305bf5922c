-- Reports that come back (bounces, complaints) name the e-mail by its Message-ID.
CREATE INDEX message_sends_by_message_id ON message_sends (message_id);
