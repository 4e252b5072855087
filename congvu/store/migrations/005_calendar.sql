-- CalDAV: calendar collections, calendar object resources, RFC 6578 sync
-- state, unit work-schedule publication and ICS feed tokens.
--
-- Owners are principals: an account (a person, room or resource) or a unit
-- (its work schedule). Every key leads with owner_id (DESIGN §4): it is the
-- distribution column if the schema is ever spread by owner (Citus). An
-- account and a unit with the same number share a shard, which is harmless;
-- owner_kind says which one a row belongs to. account_id / unit_id repeat
-- the owner only so that removing the account or unit cascades.

CREATE TABLE calendars (
    owner_id      integer NOT NULL,
    id            bigserial NOT NULL,
    owner_kind    text NOT NULL CHECK (owner_kind IN ('account', 'unit')),
    account_id    integer REFERENCES accounts(id) ON DELETE CASCADE,
    unit_id       integer REFERENCES units(id) ON DELETE CASCADE,
    -- the last path segment of the collection URL
    name          text NOT NULL CHECK (name <> '' AND strpos(name, '/') = 0),
    -- 'schedule-inbox' / 'schedule-outbox' are RFC 6638 collections (scheduling)
    kind          text NOT NULL DEFAULT 'calendar'
                  CHECK (kind IN ('calendar', 'schedule-inbox', 'schedule-outbox')),
    displayname   text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    color         text NOT NULL DEFAULT '',
    sort_order    integer,
    timezone      text NOT NULL DEFAULT '',
    components    text[] NOT NULL DEFAULT '{VEVENT,VTODO}',
    is_default    boolean NOT NULL DEFAULT false,
    -- RFC 6578: the last change number handed out in this collection.
    -- The sync token (and getctag) is "<id>-<sync_seq>".
    sync_seq      bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, id),
    UNIQUE (owner_id, owner_kind, name),
    CHECK ((owner_kind = 'account') = (account_id IS NOT NULL)),
    CHECK ((owner_kind = 'unit') = (unit_id IS NOT NULL)),
    CHECK (coalesce(account_id, unit_id) = owner_id)
);
CREATE UNIQUE INDEX calendars_one_default ON calendars (owner_id, owner_kind, kind)
    WHERE is_default;
CREATE INDEX calendars_account_idx ON calendars (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX calendars_unit_idx ON calendars (unit_id) WHERE unit_id IS NOT NULL;

-- One calendar object resource (RFC 4791 §4.1). The time-range index: every
-- object falls in a span bucket by last_end - first_start (0: a single event
-- of at most 7 days; 1: at most 92 days; 2: 1,100; 3: 11,000; 4: longer,
-- unbounded or undated). Bucket k is searched by first_start within
-- [start - its longest span, end] — a bounded slice of the index however long
-- the history — and bucket 4 by last_end. Candidates are a superset; single
-- events and indexed series are then decided from the columns exactly.
CREATE TABLE calendar_objects (
    owner_id      integer NOT NULL,
    calendar_id   bigint NOT NULL,
    href          text NOT NULL,
    uid           text NOT NULL,
    etag          text NOT NULL,
    ics           text NOT NULL,
    component     text NOT NULL,
    first_start   timestamptz NOT NULL,
    last_end      timestamptz,
    recurring     boolean NOT NULL DEFAULT false,
    span_bucket   smallint NOT NULL CHECK (span_bucket BETWEEN 0 AND 4),
    -- every instance of a recurring VEVENT is in calendar_instances
    instances_indexed boolean NOT NULL DEFAULT false,
    class         text NOT NULL DEFAULT 'PUBLIC',
    -- RFC 6638 §3.2.10, set by scheduling; NULL when not a scheduling object
    schedule_tag  text,
    modseq        bigint NOT NULL,
    size          integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, calendar_id, href),
    UNIQUE (owner_id, calendar_id, uid),
    FOREIGN KEY (owner_id, calendar_id) REFERENCES calendars(owner_id, id) ON DELETE CASCADE,
    CHECK (span_bucket = 4 OR last_end IS NOT NULL)
);
CREATE INDEX calendar_objects_modseq_idx ON calendar_objects (owner_id, calendar_id, modseq);
CREATE INDEX calendar_objects_span_idx
    ON calendar_objects (owner_id, calendar_id, span_bucket, first_start) WHERE span_bucket < 4;
CREATE INDEX calendar_objects_open_idx ON calendar_objects (owner_id, calendar_id, last_end)
    WHERE span_bucket = 4;
-- "this UID anywhere in the owner's calendars" (scheduling, Thunderbird's duplicate UID)
CREATE INDEX calendar_objects_uid_idx ON calendar_objects (owner_id, uid);

-- The instances of bounded recurring VEVENTs (up to 1,000 each), so that a
-- time-range over a recurring event is answered without parsing it.
CREATE TABLE calendar_instances (
    owner_id      integer NOT NULL,
    calendar_id   bigint NOT NULL,
    href          text NOT NULL,
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL,
    PRIMARY KEY (owner_id, calendar_id, href, start_at, end_at),
    FOREIGN KEY (owner_id, calendar_id, href)
        REFERENCES calendar_objects(owner_id, calendar_id, href) ON DELETE CASCADE
);

-- RFC 6578 §3.5 removals: one row per removed href with the change number of
-- the removal. A re-created href has a newer modseq in calendar_objects.
CREATE TABLE calendar_tombstones (
    owner_id      integer NOT NULL,
    calendar_id   bigint NOT NULL,
    href          text NOT NULL,
    modseq        bigint NOT NULL,
    removed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, calendar_id, href),
    FOREIGN KEY (owner_id, calendar_id) REFERENCES calendars(owner_id, id) ON DELETE CASCADE
);
CREATE INDEX calendar_tombstones_modseq_idx ON calendar_tombstones (owner_id, calendar_id, modseq);

-- Publication scope of a unit's work schedule; no row: authz.default_publication.
CREATE TABLE unit_schedule_publication (
    unit_id       integer PRIMARY KEY REFERENCES units(id) ON DELETE CASCADE,
    scope         text NOT NULL CHECK (scope IN ('unit', 'subtree', 'organisation')),
    set_by        text NOT NULL,
    set_at        timestamptz NOT NULL DEFAULT now()
);

-- Read-only ICS feeds: a secret token per published calendar, revocable.
-- Looked up by token alone (a small table, a reference table under Citus).
CREATE TABLE calendar_feeds (
    token         text PRIMARY KEY,
    owner_id      integer NOT NULL,
    calendar_id   bigint NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    FOREIGN KEY (owner_id, calendar_id) REFERENCES calendars(owner_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX calendar_feeds_active ON calendar_feeds (owner_id, calendar_id)
    WHERE revoked_at IS NULL;
