-- IMAP performance (bench/imap_load.py).
--
-- SEARCH on header fields (SUBJECT, FROM, TO, CC, BCC, HEADER) reads only the
-- folded header text of each message of one mailbox. In message_blobs that
-- text shares its row with the message bytes and their parse results (about
-- 2 KB a row), so searching a mailbox of 100,000 messages walked some 200 MB
-- of heap, more than the buffer cache holds. Here it has a narrow row of its
-- own (a few hundred bytes), so the same search touches a sixth of the pages.
--
-- Kept in step with message_blobs by a trigger, so every writer (SMTP
-- delivery, APPEND, COPY, restore, the retention purge through the cascade)
-- stays as it is. Keyed like message_blobs, by SHA-256: it is part of the one
-- shared copy of a message (DESIGN principle 3), not of any account's rows.
-- The answer is still RFC 3501's substring answer (store/imap_search.py).

CREATE TABLE message_search_headers (
    sha256   bytea PRIMARY KEY REFERENCES message_blobs(sha256) ON DELETE CASCADE,
    headers  text NOT NULL
);

INSERT INTO message_search_headers (sha256, headers)
    SELECT sha256, search_headers FROM message_blobs;

CREATE FUNCTION message_search_headers_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO message_search_headers (sha256, headers)
            VALUES (NEW.sha256, NEW.search_headers);
    ELSE
        UPDATE message_search_headers SET headers = NEW.search_headers
            WHERE sha256 = NEW.sha256;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER message_search_headers_sync
    AFTER INSERT OR UPDATE OF search_headers ON message_blobs
    FOR EACH ROW EXECUTE FUNCTION message_search_headers_sync();
