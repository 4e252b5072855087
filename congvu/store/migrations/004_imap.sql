-- IMAP: per-reader \Seen in shared mailboxes, subscriptions to other users'
-- folders, why a row was expunged, and indexes the IMAP hot paths need.
-- Keys lead with the owning account_id (DESIGN §4).

-- RFC 4314 §4 / RFC 3501 §2.3.2: \Seen is per user in a shared mailbox. The
-- owner's \Seen stays in mailbox_messages.flags; a delegate's lives here, so
-- a secretary reading the leader's mail does not mark it read for the leader.
CREATE TABLE imap_seen (
    owner_id    integer NOT NULL,
    mailbox_id  bigint NOT NULL,
    reader_id   integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    uid         bigint NOT NULL,
    PRIMARY KEY (owner_id, mailbox_id, reader_id, uid),
    FOREIGN KEY (owner_id, mailbox_id) REFERENCES mailboxes(account_id, id) ON DELETE CASCADE
);

-- RFC 3501 §6.3.6 SUBSCRIBE of mailboxes in the "Other Users" namespace
-- (own mailboxes use mailboxes.subscribed). Names are the owner's names, so
-- the subscription survives while the grant lapses and comes back with it.
CREATE TABLE imap_subscriptions (
    account_id  integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    owner_id    integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        text NOT NULL,
    PRIMARY KEY (account_id, owner_id, name)
);

-- Retention: 'expunge' rows may be restored by `congvu admin mail restore`;
-- 'move' rows are the source side of a MOVE (RFC 6851) whose message lives
-- on in the destination, so restoring them would duplicate it.
ALTER TABLE mailbox_messages ADD COLUMN expunge_reason text;

-- Visible messages of one mailbox in UID order: SELECT, FETCH 1:*, SEARCH.
CREATE INDEX mailbox_messages_visible_idx ON mailbox_messages (account_id, mailbox_id, uid)
    INCLUDE (flags, size)
    WHERE expunged_at IS NULL;
