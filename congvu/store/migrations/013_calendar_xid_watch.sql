-- Change numbers are transaction ids (migration 011), and transaction ids
-- belong to a PostgreSQL cluster: a dump restored into another one (moving
-- from the embedded server to an external one) may count them from a lower
-- point than the numbers stored, and those calendars' tokens and getctag
-- would stop moving until the new ids passed the old.
--
-- calendar_check_xids() runs each time a node starts (after the migrations,
-- congvu.store.migrate): when a stored change number is not below the next
-- transaction id, every stored number is set to the current id, so tokens
-- handed out before are "from the future" and clients sync again from the
-- start (valid-sync-token). It reads the highest stored number from the
-- change-number indexes (a scan of them, once per start).
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
