-- IMAP performance: header-field SEARCH and FETCH (ENVELOPE) (bench/imap_load.py).
--
-- Both walk one mailbox's rows and looked each message's text up by SHA-256
-- (007's narrow header copy, message_blobs for the ENVELOPE): one index
-- descent per message, in no useful order, 2-3 µs each — 20 ms for a
-- 10,000-message SEARCH SUBJECT, Dovecot's whole time.
--
-- Here the folded header text and the ENVELOPE are kept per placement, keyed
-- like mailbox_messages (account_id first, DESIGN §4), each INCLUDEd in an
-- index on that key: SEARCH and FETCH read one mailbox's stretch of index
-- leaf pages in UID order, index-only, whatever order mail arrived in (the
-- heap of a table many mailboxes deliver into is in no mailbox's order; an
-- index always is). A btree entry must stay under a third of a page, so a
-- text longer than 2000 octets (long To/Cc lists) is kept in the `_long`
-- column instead and read from the heap for those rows only. The answers
-- are unchanged: RFC 3501's substring answer (store/imap_search.py), the
-- ENVELOPE computed at delivery.
--
-- Kept by triggers, so every writer (SMTP delivery, APPEND, COPY/MOVE,
-- restore, DELETE's hand-over to INBOX) stays as it is; rows go with their
-- mailbox_messages row (purge, mailbox deletion) through the foreign key.
-- It replaces 007's message_search_headers, which nothing reads any more.
-- (This file grew the ENVELOPE copy within the hour it was first committed.)

CREATE TABLE mailbox_message_texts (
    account_id     integer NOT NULL,
    mailbox_id     bigint NOT NULL,
    uid            bigint NOT NULL,
    headers_short  text,    -- message_blobs.search_headers when at most 2000 octets, else NULL
    headers_long   text,    -- ... when longer, else NULL
    envelope_short bytea,   -- message_blobs.envelope when at most 2000 octets, else NULL
    envelope_long  bytea,   -- ... when longer, else NULL
    PRIMARY KEY (account_id, mailbox_id, uid) INCLUDE (headers_short),
    FOREIGN KEY (account_id, mailbox_id, uid) REFERENCES mailbox_messages (account_id, mailbox_id, uid)
        ON DELETE CASCADE
);
CREATE INDEX mailbox_message_texts_envelope_idx
    ON mailbox_message_texts (account_id, mailbox_id, uid) INCLUDE (envelope_short);

INSERT INTO mailbox_message_texts (account_id, mailbox_id, uid, headers_short, headers_long,
                                   envelope_short, envelope_long)
    SELECT m.account_id, m.mailbox_id, m.uid,
           CASE WHEN octet_length(b.search_headers) <= 2000 THEN b.search_headers END,
           CASE WHEN octet_length(b.search_headers) > 2000 THEN b.search_headers END,
           CASE WHEN octet_length(b.envelope) <= 2000 THEN b.envelope END,
           CASE WHEN octet_length(b.envelope) > 2000 THEN b.envelope END
    FROM mailbox_messages m JOIN message_blobs b ON b.sha256 = m.sha256
    ORDER BY m.account_id, m.mailbox_id, m.uid;
ANALYZE mailbox_message_texts;

-- One statement per INSERT into mailbox_messages, however many rows (COPY of
-- a whole mailbox is one join, not a lookup per row).
CREATE FUNCTION mailbox_message_texts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mailbox_message_texts (account_id, mailbox_id, uid, headers_short, headers_long,
                                       envelope_short, envelope_long)
        SELECT a.account_id, a.mailbox_id, a.uid,
               CASE WHEN octet_length(b.search_headers) <= 2000 THEN b.search_headers END,
               CASE WHEN octet_length(b.search_headers) > 2000 THEN b.search_headers END,
               CASE WHEN octet_length(b.envelope) <= 2000 THEN b.envelope END,
               CASE WHEN octet_length(b.envelope) > 2000 THEN b.envelope END
        FROM added a JOIN message_blobs b ON b.sha256 = a.sha256;
    RETURN NULL;
END
$$;

CREATE TRIGGER mailbox_message_texts_add
    AFTER INSERT ON mailbox_messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION mailbox_message_texts_add();

CREATE FUNCTION mailbox_message_texts_redo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailbox_message_texts s
        SET headers_short = CASE WHEN octet_length(NEW.search_headers) <= 2000
                                 THEN NEW.search_headers END,
            headers_long = CASE WHEN octet_length(NEW.search_headers) > 2000
                                THEN NEW.search_headers END,
            envelope_short = CASE WHEN octet_length(NEW.envelope) <= 2000 THEN NEW.envelope END,
            envelope_long = CASE WHEN octet_length(NEW.envelope) > 2000 THEN NEW.envelope END
        FROM mailbox_messages m
        WHERE m.sha256 = NEW.sha256 AND s.account_id = m.account_id
          AND s.mailbox_id = m.mailbox_id AND s.uid = m.uid;
    RETURN NULL;
END
$$;

CREATE TRIGGER mailbox_message_texts_redo
    AFTER UPDATE OF search_headers, envelope ON message_blobs
    FOR EACH ROW EXECUTE FUNCTION mailbox_message_texts_redo();

DROP TRIGGER message_search_headers_sync ON message_blobs;
DROP FUNCTION message_search_headers_sync();
DROP TABLE message_search_headers;
