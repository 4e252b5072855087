-- IMAP performance, header-field SEARCH (bench/imap_load.py).
--
-- 007 gave the folded header text a narrow table keyed by SHA-256. A SEARCH
-- on SUBJECT/FROM/TO/CC/BCC/HEADER walks one mailbox's rows and looked each
-- message's text up there by hash: one index descent per message, in no
-- useful order, some 2 µs each — 20 ms for 10,000 messages, Dovecot's time.
--
-- Here the text is kept per placement, keyed like mailbox_messages
-- (account_id first, DESIGN §4), and the primary key INCLUDEs it: a search
-- reads one mailbox's stretch of index leaf pages in UID order, an
-- index-only scan whatever order mail arrived in (the heap of a table many
-- mailboxes deliver into is in no mailbox's order; the index always is).
-- A btree entry must stay under a third of a page, so text longer than
-- 2000 octets (long To/Cc lists) is kept in `long` instead and read from the
-- heap for those rows only. The answer is still RFC 3501's substring answer
-- (store/imap_search.py).
--
-- Kept by triggers, so every writer (SMTP delivery, APPEND, COPY/MOVE,
-- restore, DELETE's hand-over to INBOX) stays as it is; rows go with their
-- mailbox_messages row (purge, mailbox deletion) through the foreign key.
-- It replaces 007's message_search_headers, which nothing reads any more.

CREATE TABLE mailbox_search_headers (
    account_id  integer NOT NULL,
    mailbox_id  bigint NOT NULL,
    uid         bigint NOT NULL,
    short       text,   -- the folded header text when at most 2000 octets, else NULL
    long        text,   -- the text when longer, else NULL
    PRIMARY KEY (account_id, mailbox_id, uid) INCLUDE (short),
    FOREIGN KEY (account_id, mailbox_id, uid) REFERENCES mailbox_messages (account_id, mailbox_id, uid)
        ON DELETE CASCADE
);

INSERT INTO mailbox_search_headers (account_id, mailbox_id, uid, short, long)
    SELECT m.account_id, m.mailbox_id, m.uid,
           CASE WHEN octet_length(b.search_headers) <= 2000 THEN b.search_headers END,
           CASE WHEN octet_length(b.search_headers) > 2000 THEN b.search_headers END
    FROM mailbox_messages m JOIN message_blobs b ON b.sha256 = m.sha256
    ORDER BY m.account_id, m.mailbox_id, m.uid;
ANALYZE mailbox_search_headers;

-- One statement per INSERT into mailbox_messages, however many rows (COPY of
-- a whole mailbox is one join, not a lookup per row).
CREATE FUNCTION mailbox_search_headers_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mailbox_search_headers (account_id, mailbox_id, uid, short, long)
        SELECT a.account_id, a.mailbox_id, a.uid,
               CASE WHEN octet_length(b.search_headers) <= 2000 THEN b.search_headers END,
               CASE WHEN octet_length(b.search_headers) > 2000 THEN b.search_headers END
        FROM added a JOIN message_blobs b ON b.sha256 = a.sha256;
    RETURN NULL;
END
$$;

CREATE TRIGGER mailbox_search_headers_add
    AFTER INSERT ON mailbox_messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION mailbox_search_headers_add();

CREATE FUNCTION mailbox_search_headers_refold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailbox_search_headers s
        SET short = CASE WHEN octet_length(NEW.search_headers) <= 2000 THEN NEW.search_headers END,
            long = CASE WHEN octet_length(NEW.search_headers) > 2000 THEN NEW.search_headers END
        FROM mailbox_messages m
        WHERE m.sha256 = NEW.sha256 AND s.account_id = m.account_id
          AND s.mailbox_id = m.mailbox_id AND s.uid = m.uid;
    RETURN NULL;
END
$$;

CREATE TRIGGER mailbox_search_headers_refold
    AFTER UPDATE OF search_headers ON message_blobs
    FOR EACH ROW EXECUTE FUNCTION mailbox_search_headers_refold();

DROP TRIGGER message_search_headers_sync ON message_blobs;
DROP FUNCTION message_search_headers_sync();
DROP TABLE message_search_headers;
