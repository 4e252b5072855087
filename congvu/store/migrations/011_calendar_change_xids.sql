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

-- The highest change number is the last entry of the calendar's stretch of
-- the change-number index; written as max() the planner may aggregate over
-- the whole stretch (it does before a table has statistics: 0.4 ms at 1,000
-- objects, growing with the calendar), so it is asked for in index order with
-- sorting ruled out for the function's statements.
CREATE FUNCTION calendar_sync_mark(p_owner bigint, p_calendar bigint) RETURNS text
LANGUAGE plpgsql STABLE
SET enable_sort = off
AS $$
DECLARE
    m bigint;
    running text;
BEGIN
    SELECT GREATEST(
        (SELECT modseq FROM calendar_objects
          WHERE owner_id = p_owner AND calendar_id = p_calendar AND modseq > 0
          ORDER BY modseq DESC LIMIT 1),
        (SELECT modseq FROM calendar_tombstones
          WHERE owner_id = p_owner AND calendar_id = p_calendar AND modseq > 0
          ORDER BY modseq DESC LIMIT 1))
      INTO m;
    m := COALESCE(m, 0);
    SELECT string_agg(x::text, '.' ORDER BY x) INTO running
      FROM calendar_running_ids() AS x
     WHERE x <= m;
    RETURN m::text || COALESCE('.' || running, '');
END $$;

-- Transaction ids belong to a PostgreSQL cluster: a dump restored into
-- another one (moving from the embedded server to an external one) may count
-- them from below the numbers stored, and those calendars' tokens and getctag
-- would stop moving. calendar_check_xids() runs here (rows written before
-- this migration carry the old per-calendar numbers) and each time a node
-- starts (after the migrations, congvu.store.migrate): when a stored change
-- number is not below the next transaction id, every stored number is set to
-- the current id, so tokens handed out before are "from the future" and
-- clients sync again from the start (valid-sync-token). It reads the highest
-- stored number from the change-number indexes (a scan of them, once per
-- start). Tokens of the old form are refused in any case.
CREATE FUNCTION calendar_check_xids() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    next_xid bigint := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
    top bigint;
    now_xid bigint;
BEGIN
    SELECT GREATEST(
        (SELECT max(modseq) FROM calendar_objects WHERE modseq > 0),
        (SELECT max(modseq) FROM calendar_tombstones WHERE modseq > 0)) INTO top;
    IF top IS NULL OR top < next_xid THEN
        RETURN false;
    END IF;
    now_xid := pg_current_xact_id()::text::bigint;
    UPDATE calendar_objects SET modseq = now_xid WHERE modseq > 0;
    UPDATE calendar_tombstones SET modseq = now_xid WHERE modseq > 0;
    RETURN true;
END $$;

SELECT calendar_check_xids();
