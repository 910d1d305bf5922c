-- The console's Customers page counts root profiles on every search. Without an index
-- that count read the whole profiles table (its rows carry each profile's state: 300 MB
-- at a million profiles); this partial index holds only the ids of roots, so the count
-- reads a few MB. New profiles append to it; a merge removes one entry.
CREATE INDEX profiles_roots ON profiles (id) WHERE merged_into IS NULL;
