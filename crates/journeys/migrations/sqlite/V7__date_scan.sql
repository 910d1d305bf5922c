-- When the journey runner last looked for dates in traits that came round (date
-- triggers): the next scan starts journeys for the occurrences after it. NULL until the
-- runner first starts with date triggers: it then begins from that moment.
ALTER TABLE journey_cursor ADD COLUMN dates_scanned_at INTEGER;
