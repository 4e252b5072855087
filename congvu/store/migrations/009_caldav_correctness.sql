-- CalDAV correctness (issue 5): floating times, several scheduling messages
-- per UID in a schedule inbox.

-- RFC 4791 §9.9: floating times (no Z, no TZID, and DATE values) are read in
-- the calendar's zone (its calendar-timezone, else the configured default,
-- Asia/Ho_Chi_Minh), not in UTC. floating_tz names the zone the indexed
-- columns (first_start, last_end, calendar_instances) of an object with
-- floating values were computed in; NULL when nothing floats. Objects whose
-- floating_tz is not their calendar's zone any more are indexed again
-- (congvu.calendar.objects.reindex_floating). Rows from before this
-- migration were computed in UTC: they say so, and are indexed again.
ALTER TABLE calendar_objects ADD COLUMN floating_tz text DEFAULT 'UTC';
ALTER TABLE calendar_objects ALTER COLUMN floating_tz DROP DEFAULT;
CREATE INDEX calendar_objects_floating_idx ON calendar_objects (owner_id, calendar_id, floating_tz)
    WHERE floating_tz IS NOT NULL;

-- RFC 6638 §4: a schedule inbox holds scheduling messages, several of which
-- may share a UID (a REQUEST and its later update, the REPLYs of several
-- attendees). UIDs stay unique in every other collection (RFC 4791 §5.3.2.1).
ALTER TABLE calendar_objects ADD COLUMN in_inbox boolean NOT NULL DEFAULT false;
UPDATE calendar_objects o SET in_inbox = true
    FROM calendars c
    WHERE c.owner_id = o.owner_id AND c.id = o.calendar_id AND c.kind = 'schedule-inbox';
ALTER TABLE calendar_objects DROP CONSTRAINT calendar_objects_owner_id_calendar_id_uid_key;
CREATE UNIQUE INDEX calendar_objects_uid_key ON calendar_objects (owner_id, calendar_id, uid)
    WHERE NOT in_inbox;
