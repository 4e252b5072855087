-- The "this UID in any of the owner's calendars" index serves only the
-- queries that ask for it (issue 5), as migration 010 did for the change
-- numbers.
--
-- (owner_id, uid) shares its first column with the primary key (owner_id,
-- calendar_id, href). On a table without statistics yet (a new server, a
-- calendar filled in seconds before autovacuum has been round) the planner
-- rates both alike for a look-up by href and may take this one, with only
-- owner_id to go on: a prepared PUT statement then reads every object of the
-- owner on each execution, for as long as its connection lives (measured:
-- 3,100 rows per PUT at 3,000 objects). Made partial on a condition every
-- change number meets, it can only serve queries that say "modseq > 0" —
-- congvu.store.calendars.find_uid and calendar_batch.objects_with_uid do.
DROP INDEX calendar_objects_uid_idx;
CREATE INDEX calendar_objects_uid_idx ON calendar_objects (owner_id, uid) WHERE modseq > 0;
