-- A table of the store's own in the decisions file, which a write transaction touches
-- (a `DELETE … WHERE 0`) to take this file's write lock and no other: the features whose
-- tables live here create and change them with their own migrations.
CREATE TABLE write_gate (id INTEGER PRIMARY KEY);
