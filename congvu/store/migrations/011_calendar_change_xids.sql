-- RFC 6578 change numbers without a per-calendar counter (issue 5).
--
-- Until now every write to a calendar took the next number of a counter on
-- the calendar's row (calendars.sync_seq), so numbers came in commit order.
-- That row lock put every writer of one calendar in a queue until its commit,
-- and the counter's row, updated on every PUT, piled up dead versions that
-- each later look-up of the calendar walked (a PUT cost grew with the writes
-- since the last autovacuum: 0.7 -> 2.6 ms of PostgreSQL time in seconds).
--
-- Now an object's or tombstone's modseq is the id of the transaction that
-- wrote it (pg_current_xact_id(), 64 bits, never reused), taken without any
-- lock. Ids are handed out in start order, not commit order, so a sync token
-- is a snapshot of the calendar, not one number: the highest modseq it holds
-- (M) and the ids of transactions still running below M at that moment; the
-- changes after a token are the rows with modseq > M or modseq among those
-- ids (congvu.store.calendars, "Sync"). calendars.sync_seq stays, counting
-- property changes only (getctag changes with them).
--
-- calendar_sync_mark() computes the snapshot part of a token; every read of
-- a calendar row returns it. Its statements use the caller's snapshot.
--
-- The transactions whose changes the current snapshot cannot see yet: those
-- running, and the caller's own (its later writes would carry its id).
CREATE FUNCTION calendar_running_ids() RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
    SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) AS x
    UNION
    SELECT pg_current_xact_id_if_assigned()::text::bigint
    WHERE pg_current_xact_id_if_assigned() IS NOT NULL
$$;

CREATE FUNCTION calendar_sync_mark(p_owner bigint, p_calendar bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m bigint;
    running text;
BEGIN
    SELECT GREATEST(
        (SELECT max(modseq) FROM calendar_objects
          WHERE owner_id = p_owner AND calendar_id = p_calendar AND modseq > 0),
        (SELECT max(modseq) FROM calendar_tombstones
          WHERE owner_id = p_owner AND calendar_id = p_calendar AND modseq > 0))
      INTO m;
    m := COALESCE(m, 0);
    SELECT string_agg(x::text, '.' ORDER BY x) INTO running
      FROM calendar_running_ids() AS x
     WHERE x <= m;
    RETURN m::text || COALESCE('.' || running, '');
END $$;

-- Rows written before this migration keep their old per-calendar numbers if
-- they are all below the transaction ids to come (the usual case: ids count
-- every transaction of the database); otherwise they are renumbered to this
-- migration's id. Tokens handed out before are rejected either way (their
-- form changes), and clients sync again from the start (valid-sync-token).
DO $$
DECLARE
    me bigint := pg_current_xact_id()::text::bigint;
BEGIN
    IF COALESCE((SELECT max(modseq) FROM calendar_objects WHERE modseq > 0), 0) >= me
       OR COALESCE((SELECT max(modseq) FROM calendar_tombstones WHERE modseq > 0), 0) >= me
    THEN
        UPDATE calendar_objects SET modseq = me WHERE modseq > 0;
        UPDATE calendar_tombstones SET modseq = me WHERE modseq > 0;
    END IF;
END $$;
