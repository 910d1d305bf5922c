-- Search by any word of a name ("rossi" finds "Anna Rossi"): a full-text index of the
-- profiles' lowercase names (FTS5, accents folded: "jose" finds "José"), kept by triggers
-- that fire only when a name changes, so the ingest writer's upserts of unchanged names
-- cost nothing here. Merged-away profiles stay indexed; searches read roots only.
CREATE VIRTUAL TABLE profile_names USING fts5(
    name_lc,
    content = 'profiles',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO profile_names (rowid, name_lc)
    SELECT id, name_lc FROM profiles WHERE name_lc IS NOT NULL;
CREATE TRIGGER profile_names_insert AFTER INSERT ON profiles
    WHEN new.name_lc IS NOT NULL
BEGIN
    INSERT INTO profile_names (rowid, name_lc) VALUES (new.id, new.name_lc);
END;
CREATE TRIGGER profile_names_update AFTER UPDATE OF name_lc ON profiles
    WHEN old.name_lc IS NOT new.name_lc
BEGIN
    INSERT INTO profile_names (profile_names, rowid, name_lc)
        SELECT 'delete', old.id, old.name_lc WHERE old.name_lc IS NOT NULL;
    INSERT INTO profile_names (rowid, name_lc)
        SELECT new.id, new.name_lc WHERE new.name_lc IS NOT NULL;
END;
CREATE TRIGGER profile_names_delete AFTER DELETE ON profiles
    WHEN old.name_lc IS NOT NULL
BEGIN
    INSERT INTO profile_names (profile_names, rowid, name_lc) VALUES ('delete', old.id, old.name_lc);
END;
