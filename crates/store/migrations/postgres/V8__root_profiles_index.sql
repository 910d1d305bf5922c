-- The console's Customers page counts root profiles on every search: an index-only scan
-- of the roots' ids instead of the whole profiles table (see the SQLite migration V7).
CREATE INDEX profiles_roots ON profiles (id) WHERE merged_into IS NULL;
