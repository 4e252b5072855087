"""Distribution groups: members are accounts, other groups, or every account of a unit.

Expansion is one recursive query: ``UNION`` makes it stop on loops (a group
that contains itself through others) and yields each account once.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .errors import Conflict, NotFound


@dataclass(frozen=True)
class Group:
    id: int
    address: str
    name: str
    domain_id: int


@dataclass(frozen=True)
class Member:
    kind: str  # account | group | unit
    ref: str  # address, group address, or unit slug
    include_subunits: bool = False

    def __str__(self) -> str:
        if self.kind == "unit":
            return f"unit:{self.ref}" + ("+sub" if self.include_subunits else "")
        return f"{self.kind}:{self.ref}"


@dataclass(frozen=True)
class Recipient:
    account_id: int
    address: str
    enabled: bool


def _group(r: asyncpg.Record) -> Group:
    return Group(r["id"], r["address"], r["name"], r["domain_id"])


async def add(conn: asyncpg.Connection, address: str, name: str, domain_id: int) -> Group:
    taken = await conn.fetchval("SELECT kind FROM addresses WHERE address = $1", address)
    if taken:
        raise Conflict(f"address {address} is already in use (by an {taken})")
    row = await conn.fetchrow(
        "INSERT INTO groups (address, name, domain_id) VALUES ($1, $2, $3) RETURNING *",
        address,
        name,
        domain_id,
    )
    await conn.execute(
        "INSERT INTO addresses (address, kind, group_id) VALUES ($1, 'group', $2)",
        address,
        row["id"],
    )
    return _group(row)


async def get(conn: asyncpg.Connection, address: str) -> Group:
    row = await conn.fetchrow("SELECT * FROM groups WHERE address = $1", address)
    if row is None:
        raise NotFound(f"no group {address}")
    return _group(row)


async def get_by_id(conn: asyncpg.Connection, group_id: int) -> Group:
    row = await conn.fetchrow("SELECT * FROM groups WHERE id = $1", group_id)
    if row is None:
        raise NotFound(f"no group with id {group_id}")
    return _group(row)


async def list_all(conn: asyncpg.Connection) -> list[Group]:
    return [_group(r) for r in await conn.fetch("SELECT * FROM groups ORDER BY address")]


async def members(conn: asyncpg.Connection, group: Group) -> list[Member]:
    rows = await conn.fetch(
        """SELECT CASE WHEN gm.member_account_id IS NOT NULL THEN 'account'
                       WHEN gm.member_group_id IS NOT NULL THEN 'group' ELSE 'unit' END AS kind,
                  coalesce(a.address, g.address, u.slug) AS ref, gm.include_subunits
           FROM group_members gm
           LEFT JOIN accounts a ON a.id = gm.member_account_id
           LEFT JOIN groups g ON g.id = gm.member_group_id
           LEFT JOIN units u ON u.id = gm.member_unit_id
           WHERE gm.group_id = $1 ORDER BY 1, 2""",
        group.id,
    )
    return [Member(r["kind"], r["ref"], r["include_subunits"]) for r in rows]


async def add_member(
    conn: asyncpg.Connection,
    group: Group,
    *,
    account_id: int | None = None,
    group_id: int | None = None,
    unit_id: int | None = None,
    include_subunits: bool = False,
) -> None:
    if group_id == group.id:
        raise Conflict(f"group {group.address} cannot contain itself")
    try:
        await conn.execute(
            """INSERT INTO group_members (group_id, member_account_id, member_group_id,
                                          member_unit_id, include_subunits)
               VALUES ($1, $2, $3, $4, $5)""",
            group.id, account_id, group_id, unit_id, include_subunits,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"already a member of {group.address}") from None


async def remove_member(
    conn: asyncpg.Connection,
    group: Group,
    *,
    account_id: int | None = None,
    group_id: int | None = None,
    unit_id: int | None = None,
) -> None:
    status = await conn.execute(
        """DELETE FROM group_members WHERE group_id = $1
             AND member_account_id IS NOT DISTINCT FROM $2
             AND member_group_id IS NOT DISTINCT FROM $3
             AND member_unit_id IS NOT DISTINCT FROM $4""",
        group.id, account_id, group_id, unit_id,
    )
    if status == "DELETE 0":
        raise NotFound(f"not a member of {group.address}")


_EXPAND = """
WITH RECURSIVE g(id) AS (
    SELECT unnest($1::int[])
    UNION
    SELECT gm.member_group_id FROM group_members gm JOIN g ON gm.group_id = g.id
    WHERE gm.member_group_id IS NOT NULL
), direct AS (
    SELECT gm.member_account_id AS id FROM group_members gm
    WHERE gm.group_id IN (SELECT id FROM g) AND gm.member_account_id IS NOT NULL
), by_unit AS (
    SELECT a.id FROM group_members gm
    JOIN units u ON u.id = gm.member_unit_id
    JOIN units su ON su.id = u.id OR (gm.include_subunits AND su.path LIKE u.path || '%')
    JOIN accounts a ON a.unit_id = su.id AND a.kind = 'person'
    WHERE gm.group_id IN (SELECT id FROM g)
)
SELECT a.id, a.address, a.enabled FROM accounts a
WHERE a.id IN (SELECT id FROM direct UNION SELECT id FROM by_unit)
ORDER BY a.address
"""


async def expand(conn: asyncpg.Connection, group_ids: list[int]) -> list[Recipient]:
    """Every account reached from these groups, once each, loops ignored."""
    rows = await conn.fetch(_EXPAND, group_ids)
    return [Recipient(r["id"], r["address"], r["enabled"]) for r in rows]
