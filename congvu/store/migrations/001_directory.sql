-- The directory: domains, the unit tree, accounts, addresses, groups,
-- delegation grants, the audit log and authentication throttling.

CREATE TABLE domains (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The organisation tree (city -> district/department -> commune/ward).
-- path is the materialized chain of ids ('/1/5/9/') so a subtree is one
-- indexed prefix scan and moving a unit rewrites its subtree's paths.
CREATE TABLE units (
    id          serial PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    parent_id   integer REFERENCES units(id),
    path        text NOT NULL,
    depth       integer NOT NULL CHECK (depth >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_path_idx ON units (path text_pattern_ops);
CREATE INDEX units_parent_idx ON units (parent_id);

CREATE TABLE accounts (
    id            serial PRIMARY KEY,
    address       text NOT NULL UNIQUE,
    domain_id     integer NOT NULL REFERENCES domains(id),
    kind          text NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'room', 'resource')),
    display_name  text NOT NULL DEFAULT '',
    unit_id       integer REFERENCES units(id),
    title         text NOT NULL DEFAULT '',
    password_hash text,
    enabled       boolean NOT NULL DEFAULT true,
    quota_bytes   bigint CHECK (quota_bytes IS NULL OR quota_bytes >= 0),
    used_bytes    bigint NOT NULL DEFAULT 0,
    -- name and address folded for diacritic-insensitive lookups (folded in Python)
    search_text   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_unit_idx ON accounts (unit_id);
CREATE INDEX accounts_domain_idx ON accounts (domain_id);

CREATE TABLE account_roles (
    account_id  integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('admin', 'unit-admin', 'schedule-manager')),
    unit_id     integer REFERENCES units(id) ON DELETE CASCADE,
    CHECK ((role = 'admin') = (unit_id IS NULL))
);
CREATE UNIQUE INDEX account_roles_uniq ON account_roles (account_id, role, coalesce(unit_id, 0));

CREATE TABLE groups (
    id          serial PRIMARY KEY,
    address     text NOT NULL UNIQUE,
    domain_id   integer NOT NULL REFERENCES domains(id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One namespace for every deliverable address: an account's own address,
-- its aliases, and group addresses can never collide.
CREATE TABLE addresses (
    address     text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('account', 'alias', 'group')),
    account_id  integer REFERENCES accounts(id) ON DELETE CASCADE,
    group_id    integer REFERENCES groups(id) ON DELETE CASCADE,
    CHECK ((kind = 'group') = (group_id IS NOT NULL)),
    CHECK ((kind = 'group') = (account_id IS NULL))
);
CREATE INDEX addresses_account_idx ON addresses (account_id);

CREATE TABLE group_members (
    id                 serial PRIMARY KEY,
    group_id           integer NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_account_id  integer REFERENCES accounts(id) ON DELETE CASCADE,
    member_group_id    integer REFERENCES groups(id) ON DELETE CASCADE,
    member_unit_id     integer REFERENCES units(id) ON DELETE CASCADE,
    include_subunits   boolean NOT NULL DEFAULT false,
    CHECK (num_nonnulls(member_account_id, member_group_id, member_unit_id) = 1)
);
CREATE UNIQUE INDEX group_members_account_uniq ON group_members (group_id, member_account_id)
    WHERE member_account_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_group_uniq ON group_members (group_id, member_group_id)
    WHERE member_group_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_unit_uniq ON group_members (group_id, member_unit_id)
    WHERE member_unit_id IS NOT NULL;

CREATE TABLE grants (
    id           serial PRIMARY KEY,
    owner_id     integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    delegate_id  integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scopes       text[] NOT NULL,
    valid_from   timestamptz,
    valid_until  timestamptz,
    granted_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, delegate_id),
    CHECK (owner_id <> delegate_id),
    CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from)
);
CREATE INDEX grants_delegate_idx ON grants (delegate_id);

-- Append-only: nothing in the code updates or deletes these rows.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    target       text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}',
    remote_addr  text
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);

CREATE TABLE auth_failures (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    address    text NOT NULL,
    remote_ip  text
);
CREATE INDEX auth_failures_address_idx ON auth_failures (address, at);
CREATE INDEX auth_failures_ip_idx ON auth_failures (remote_ip, at);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
