-- CalDAV performance (issue 5): the change-number indexes serve only the
-- queries that ask for them.
--
-- (owner_id, calendar_id, modseq) shares its leading columns with the primary
-- key (owner_id, calendar_id, href). Before a table has statistics (a new
-- server, a calendar filled in seconds, autovacuum not yet round), the planner
-- thinks a calendar holds one row and may look an href up through the modseq
-- index, reading the whole calendar to find it: every PUT then costs time in
-- proportion to the calendar. Made partial on a condition every change
-- number meets (they start at 1), the index can only serve queries that say
-- "modseq > 0" — the sync queries in congvu.store.calendars do — and lookups
-- by href or UID go to their unique indexes whatever the statistics say.
DROP INDEX calendar_objects_modseq_idx;
CREATE INDEX calendar_objects_modseq_idx ON calendar_objects (owner_id, calendar_id, modseq)
    WHERE modseq > 0;
DROP INDEX calendar_tombstones_modseq_idx;
CREATE INDEX calendar_tombstones_modseq_idx
    ON calendar_tombstones (owner_id, calendar_id, modseq) WHERE modseq > 0;
