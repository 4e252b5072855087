-- Change numbers are transaction ids (migration 011), and transaction ids
-- belong to a PostgreSQL cluster: a dump restored into a new one (moving from
-- the embedded server to an external one) starts them again far below the
-- numbers stored, and every calendar's token and getctag would stop moving.
--
-- The database records the transaction counter each time a node starts
-- (calendar_check_xids(), run after the migrations, congvu.store.migrate).
-- A counter below the record means the ids started again: the stored change
-- numbers are set to the current id, so tokens handed out before are "from
-- the future" and clients sync again from the start (valid-sync-token).
CREATE TABLE calendar_xid_watermark (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    xid  bigint NOT NULL
);
INSERT INTO calendar_xid_watermark (xid) VALUES (pg_current_xact_id()::text::bigint);

CREATE FUNCTION calendar_check_xids() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    now_xid bigint := pg_current_xact_id()::text::bigint;
    seen bigint;
BEGIN
    SELECT xid INTO seen FROM calendar_xid_watermark FOR UPDATE;
    UPDATE calendar_xid_watermark SET xid = now_xid;
    IF seen IS NOT NULL AND now_xid < seen THEN
        UPDATE calendar_objects SET modseq = now_xid WHERE modseq > 0;
        UPDATE calendar_tombstones SET modseq = now_xid WHERE modseq > 0;
        RETURN true;
    END IF;
    RETURN false;
END $$;
