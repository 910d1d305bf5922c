-- Memberships as a log of changes, one row each, instead of intervals plus a timeline
-- event per change. A decide step then appends rows and touches one random index entry
-- per profile (all of a profile's changes share a leaf of membership_changes_profile),
-- where intervals cost an index entry per segment and a JSON event body per change; at
-- 10,000 events/s with several changes per event that was most of the decider's time.
-- A profile is a member of a segment while its latest row for it says entered.
-- The timeline shows the rows as Segment Entered / Segment Exited events (not the first
-- members of a new segment: first_fill = 1).
CREATE TABLE membership_changes (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    entered    INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    first_fill INTEGER NOT NULL
);
CREATE INDEX membership_changes_profile ON membership_changes (profile_id, segment_id, id);
CREATE INDEX membership_changes_segment ON membership_changes (segment_id, id);

-- Intervals become their entry and exit, in the order they happened; an entry that had
-- no timeline event was a first member.
INSERT INTO membership_changes (segment_id, profile_id, entered, at, first_fill)
SELECT segment_id, profile_id, entered, at, first_fill FROM (
    SELECT m.id AS interval_id, 0 AS part, m.segment_id, m.profile_id, 1 AS entered,
           m.entered_at AS at,
           CASE WHEN EXISTS (
               SELECT 1 FROM events e JOIN sources s ON s.id = e.source_id
               WHERE s.name = 'prossimo:internal'
                 AND e.message_id = 'segment-entered-' || m.segment_id || '-' || m.profile_id || '-' || m.entered_at
           ) THEN 0 ELSE 1 END AS first_fill
    FROM memberships m
    UNION ALL
    SELECT m.id, 1, m.segment_id, m.profile_id, 0, m.exited_at, 0
    FROM memberships m WHERE m.exited_at IS NOT NULL
) intervals
ORDER BY at, interval_id, part;

DROP TABLE memberships;

-- The platform's own events now come from membership_changes.
DELETE FROM events WHERE source_id IN (SELECT id FROM sources WHERE name = 'prossimo:internal');
