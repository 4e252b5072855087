-- Mail storage shared by SMTP delivery, IMAP and webmail.
--
-- Message bytes are stored once per SHA-256, with what the parse-once step
-- (congvu.mailserver.mime) derived from them; mailboxes hold small rows that
-- point at them. Mail tables lead their keys with account_id (DESIGN §4).

CREATE TABLE message_blobs (
    sha256          bytea PRIMARY KEY,
    size            integer NOT NULL,
    raw             bytea NOT NULL,
    -- IMAP wire renderings, computed once at delivery
    envelope        bytea NOT NULL,
    body            bytea NOT NULL,
    bodystructure   bytea NOT NULL,
    part_map        jsonb NOT NULL,
    -- header fields for SEARCH, SORT and webmail (decoded)
    sent_date       timestamptz,
    subject         text NOT NULL DEFAULT '',
    from_text       text NOT NULL DEFAULT '',
    to_text         text NOT NULL DEFAULT '',
    cc_text         text NOT NULL DEFAULT '',
    message_id      text,
    sort_subject    text NOT NULL DEFAULT '',
    sort_from       text NOT NULL DEFAULT '',
    sort_to         text NOT NULL DEFAULT '',
    sort_cc         text NOT NULL DEFAULT '',
    -- folded search text (textfold.fold: no diacritics, lower case)
    search_headers  text NOT NULL DEFAULT '',
    search_body     text NOT NULL DEFAULT '',
    preview         text NOT NULL DEFAULT '',
    has_attachments boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- UIDVALIDITY values are never reused, even after a mailbox is deleted and
-- created again under the same name (RFC 3501 §2.3.1.1).
CREATE SEQUENCE mailbox_uidvalidity_seq MAXVALUE 4294967295;
SELECT setval('mailbox_uidvalidity_seq', extract(epoch FROM now())::bigint);

CREATE TABLE mailboxes (
    account_id     integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    id             bigserial,
    name           text NOT NULL,           -- full name, '/' as hierarchy delimiter
    special_use    text,                    -- RFC 6154: \Sent, \Drafts, ...
    uidvalidity    bigint NOT NULL DEFAULT nextval('mailbox_uidvalidity_seq'),
    uidnext        bigint NOT NULL DEFAULT 1,
    highestmodseq  bigint NOT NULL DEFAULT 1,
    subscribed     boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, name)
);

CREATE TABLE mailbox_messages (
    account_id     integer NOT NULL,
    mailbox_id     bigint NOT NULL,
    uid            bigint NOT NULL,
    sha256         bytea NOT NULL REFERENCES message_blobs(sha256),
    size           integer NOT NULL,
    internal_date  timestamptz NOT NULL,
    flags          text[] NOT NULL DEFAULT '{}',
    modseq         bigint NOT NULL,
    -- set when expunged: the row is hidden but kept for the retention period
    expunged_at    timestamptz,
    PRIMARY KEY (account_id, mailbox_id, uid),
    FOREIGN KEY (account_id, mailbox_id) REFERENCES mailboxes(account_id, id) ON DELETE CASCADE
);
CREATE INDEX mailbox_messages_modseq_idx ON mailbox_messages (account_id, mailbox_id, modseq);
CREATE INDEX mailbox_messages_expunged_idx ON mailbox_messages (expunged_at)
    WHERE expunged_at IS NOT NULL;
CREATE INDEX mailbox_messages_sha_idx ON mailbox_messages (sha256);
