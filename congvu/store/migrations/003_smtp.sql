-- SMTP: the outbound queue and the DKIM signing keys.
--
-- The queue is shared by every node (DESIGN §4): workers claim due rows with
-- FOR UPDATE SKIP LOCKED and lease them by moving next_attempt forward, so a
-- node that dies mid-delivery only delays a message, never loses it.
-- Queued bytes live in the queue row itself (one copy for all recipients),
-- not in message_blobs: those are garbage-collected by the IMAP retention
-- purge once no mailbox refers to them.

CREATE TABLE outbound_messages (
    id              bigserial PRIMARY KEY,
    -- the submitting account: delay notices and bounces go to its mailbox
    account_id      integer REFERENCES accounts(id) ON DELETE SET NULL,
    -- RFC 5321 §4.5.5: '' is the null reverse-path (a bounce is never bounced)
    mail_from       text NOT NULL,
    smtputf8        boolean NOT NULL DEFAULT false,
    raw             bytea NOT NULL,
    size            integer NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    next_attempt    timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    delay_notified  boolean NOT NULL DEFAULT false,
    last_error      text
);
CREATE INDEX outbound_messages_due_idx ON outbound_messages (next_attempt);

-- One row per recipient: each has its own fate (RFC 3464 per-recipient fields).
CREATE TABLE outbound_recipients (
    message_id   bigint NOT NULL REFERENCES outbound_messages(id) ON DELETE CASCADE,
    rcpt         text NOT NULL,
    domain       text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'delivered', 'failed')),
    last_code    integer,
    last_status  text,          -- RFC 3463 enhanced code, e.g. 4.4.1
    last_reply   text,
    remote_mta   text,
    updated_at   timestamptz,
    PRIMARY KEY (message_id, rcpt)
);

-- RFC 6376 signing keys, one or more selectors per hosted domain.
CREATE TABLE dkim_keys (
    domain_id    integer NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector     text NOT NULL,
    algorithm    text NOT NULL DEFAULT 'rsa-sha256',
    private_key  text NOT NULL,   -- PEM, PKCS#1 RSAPrivateKey (what dkimpy reads)
    public_key   text NOT NULL,   -- base64 of the DER SubjectPublicKeyInfo (the p= tag)
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, selector)
);
