"""Accounts, their roles and their aliases, and address resolution."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from .errors import Conflict, NotFound


@dataclass(frozen=True)
class Role:
    role: str  # admin | unit-admin | schedule-manager
    unit_id: int | None = None
    unit_slug: str | None = None

    def __str__(self) -> str:
        return self.role if self.unit_slug is None else f"{self.role}:{self.unit_slug}"


@dataclass(frozen=True)
class Account:
    id: int
    address: str
    domain_id: int
    kind: str
    display_name: str
    unit_id: int | None
    unit_slug: str | None
    title: str
    enabled: bool
    quota_bytes: int | None
    used_bytes: int
    created_at: datetime
    roles: tuple[Role, ...] = ()
    aliases: tuple[str, ...] = ()
    # The hash is kept out of repr so it never lands in a log line.
    password_hash: str | None = field(default=None, repr=False)


_SELECT = """
SELECT a.*, u.slug AS unit_slug,
       coalesce((SELECT array_agg(r.role || ':' || coalesce(r.unit_id::text, '') || ':' ||
                                  coalesce(ru.slug, '') ORDER BY r.role, ru.slug)
                 FROM account_roles r LEFT JOIN units ru ON ru.id = r.unit_id
                 WHERE r.account_id = a.id), '{}') AS role_list,
       coalesce((SELECT array_agg(x.address ORDER BY x.address) FROM addresses x
                 WHERE x.account_id = a.id AND x.kind = 'alias'), '{}') AS alias_list
FROM accounts a LEFT JOIN units u ON u.id = a.unit_id
"""


def _account(r: asyncpg.Record) -> Account:
    roles = []
    for item in r["role_list"]:
        role, unit_id, slug = item.split(":", 2)
        roles.append(Role(role, int(unit_id) if unit_id else None, slug or None))
    return Account(
        id=r["id"],
        address=r["address"],
        domain_id=r["domain_id"],
        kind=r["kind"],
        display_name=r["display_name"],
        unit_id=r["unit_id"],
        unit_slug=r["unit_slug"],
        title=r["title"],
        enabled=r["enabled"],
        quota_bytes=r["quota_bytes"],
        used_bytes=r["used_bytes"],
        created_at=r["created_at"],
        roles=tuple(roles),
        aliases=tuple(r["alias_list"]),
        password_hash=r["password_hash"],
    )


async def get(conn: asyncpg.Connection, address: str) -> Account:
    row = await conn.fetchrow(_SELECT + " WHERE a.address = $1", address)
    if row is None:
        raise NotFound(f"no account {address}")
    return _account(row)


async def get_by_id(conn: asyncpg.Connection, account_id: int) -> Account:
    row = await conn.fetchrow(_SELECT + " WHERE a.id = $1", account_id)
    if row is None:
        raise NotFound(f"no account with id {account_id}")
    return _account(row)


# What an `Account` is read from, as the ids of the transactions that wrote the
# versions now visible of those rows: the account's, its unit's, its roles' and
# their units', its addresses'. The value read now equals one read before only
# if these are the very same row versions: an UPDATE writes a new version of a
# row and an INSERT a new row, both with the id of the writing transaction,
# which was not yet visible before (so cannot have been in the earlier value);
# without any such row only DELETEs are left, and they shorten the value. So an
# Account read in the same statement as its stamp is still current while the
# stamp is the same. A change that is not one (a vacuum reordering rows) only
# costs a new read. ``u.xmin`` is NULL without a unit.
_STAMP = """ARRAY[a.xmin, u.xmin]
       || ARRAY(SELECT r.xmin FROM account_roles r WHERE r.account_id = a.id)
       || ARRAY(SELECT ru.xmin FROM account_roles r JOIN units ru ON ru.id = r.unit_id
                WHERE r.account_id = a.id)
       || ARRAY(SELECT x.xmin FROM addresses x WHERE x.account_id = a.id)"""
_STAMP_BY_ID = f"""SELECT {_STAMP}
FROM accounts a LEFT JOIN units u ON u.id = a.unit_id WHERE a.id = $1"""
_STAMPED_BY_ID = _SELECT.replace("\nFROM accounts a ", f", {_STAMP} AS stamp\nFROM accounts a ", 1) + (
    " WHERE a.id = $1")
assert _STAMPED_BY_ID.count("AS stamp") == 1


async def get_stamped(conn: asyncpg.Connection, account_id: int,
                      ) -> tuple[Account, list[int | None]] | None:
    """The account and its stamp (`stamp`), read together; None if there is none."""
    row = await conn.fetchrow(_STAMPED_BY_ID, account_id)
    return (_account(row), row["stamp"]) if row else None


async def stamp(conn: asyncpg.Connection, account_id: int) -> list[int | None] | None:
    """A value that changes whenever the account as `get_stamped` reads it does
    (its row, unit, roles or addresses); None if there is no such account."""
    value: list[int | None] | None = await conn.fetchval(_STAMP_BY_ID, account_id)
    return value


async def get_by_address_for_login(conn: asyncpg.Connection, address: str) -> Account | None:
    """The account whose own address this is (logins use the primary address)."""
    row = await conn.fetchrow(_SELECT + " WHERE a.address = $1", address)
    return _account(row) if row else None


async def find(conn: asyncpg.Connection, address: str) -> Account | None:
    """The account for an address or one of its aliases, or None."""
    row = await conn.fetchrow(
        _SELECT + " WHERE a.id = (SELECT account_id FROM addresses WHERE address = $1)", address
    )
    return _account(row) if row else None


async def list_accounts(
    conn: asyncpg.Connection,
    *,
    unit_ids: list[int] | None = None,
    domain_id: int | None = None,
    search: str | None = None,
    limit: int | None = None,
) -> list[Account]:
    rows = await conn.fetch(
        _SELECT
        + """ WHERE ($1::int[] IS NULL OR a.unit_id = ANY($1))
              AND ($2::int IS NULL OR a.domain_id = $2)
              AND ($3::text IS NULL OR a.search_text LIKE '%' || $3 || '%')
            ORDER BY a.address LIMIT $4""",
        unit_ids,
        domain_id,
        search,
        limit,
    )
    return [_account(r) for r in rows]


async def add(
    conn: asyncpg.Connection,
    *,
    address: str,
    domain_id: int,
    display_name: str,
    unit_id: int | None,
    title: str,
    password_hash: str | None,
    kind: str = "person",
    quota_bytes: int | None = None,
    search_text: str = "",
) -> int:
    taken = await conn.fetchval("SELECT kind FROM addresses WHERE address = $1", address)
    if taken:
        raise Conflict(f"address {address} is already in use (by an {taken})")
    try:
        account_id = await conn.fetchval(
            """INSERT INTO accounts (address, domain_id, kind, display_name, unit_id, title,
                                     password_hash, quota_bytes, search_text)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
            address, domain_id, kind, display_name, unit_id, title, password_hash,
            quota_bytes, search_text,
        )
        await conn.execute(
            "INSERT INTO addresses (address, kind, account_id) VALUES ($1, 'account', $2)",
            address,
            account_id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"address {address} is already in use") from None
    return int(account_id)


async def update(conn: asyncpg.Connection, account_id: int, **changes: object) -> None:
    """Change some of: display_name, unit_id, title, password_hash, enabled, quota_bytes,
    search_text."""
    allowed = {"display_name", "unit_id", "title", "password_hash", "enabled", "quota_bytes",
               "search_text"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    for column, value in changes.items():
        # column names come from the fixed set above, never from input
        await conn.execute(
            f"UPDATE accounts SET {column} = $2, updated_at = now() WHERE id = $1",
            account_id,
            value,
        )


async def remove(conn: asyncpg.Connection, account_id: int) -> None:
    await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)


async def add_role(conn: asyncpg.Connection, account_id: int, role: str, unit_id: int | None) -> None:
    await conn.execute(
        """INSERT INTO account_roles (account_id, role, unit_id) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""",
        account_id,
        role,
        unit_id,
    )


async def remove_role(
    conn: asyncpg.Connection, account_id: int, role: str, unit_id: int | None
) -> bool:
    status = await conn.execute(
        """DELETE FROM account_roles WHERE account_id = $1 AND role = $2
           AND coalesce(unit_id, 0) = coalesce($3::int, 0)""",
        account_id,
        role,
        unit_id,
    )
    return status != "DELETE 0"


async def add_alias(conn: asyncpg.Connection, alias: str, account_id: int) -> None:
    taken = await conn.fetchval("SELECT kind FROM addresses WHERE address = $1", alias)
    if taken:
        raise Conflict(f"address {alias} is already in use (by an {taken})")
    await conn.execute(
        "INSERT INTO addresses (address, kind, account_id) VALUES ($1, 'alias', $2)",
        alias,
        account_id,
    )


async def remove_alias(conn: asyncpg.Connection, alias: str) -> None:
    status = await conn.execute(
        "DELETE FROM addresses WHERE address = $1 AND kind = 'alias'", alias
    )
    if status == "DELETE 0":
        raise NotFound(f"no alias {alias}")


@dataclass(frozen=True)
class AddressTarget:
    """What a deliverable address resolves to."""

    address: str
    kind: str  # account | alias | group
    account_id: int | None
    group_id: int | None


async def resolve_address(conn: asyncpg.Connection, address: str) -> AddressTarget | None:
    row = await conn.fetchrow("SELECT * FROM addresses WHERE address = $1", address)
    if row is None:
        return None
    return AddressTarget(row["address"], row["kind"], row["account_id"], row["group_id"])


async def accounts_in_units(conn: asyncpg.Connection, unit_ids: list[int]) -> list[int]:
    rows = await conn.fetch("SELECT id FROM accounts WHERE unit_id = ANY($1::int[])", unit_ids)
    return [r["id"] for r in rows]
