-- Search by any word of a name ("rossi" finds "Anna Rossi"): a GIN index of the words of
-- the roots' lowercase names (the 'simple' configuration: words as written, no stemming).
CREATE INDEX profiles_name_words ON profiles
    USING gin (to_tsvector('simple', name_lc))
    WHERE merged_into IS NULL AND name_lc IS NOT NULL;
