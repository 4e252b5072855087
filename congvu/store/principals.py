"""Principal search for CalDAV (RFC 3744 §9.4 principal-property-search).

Accounts (people, rooms, resources) are narrowed in SQL on their folded
``search_text`` (name, address, title without diacritics, filled by the
directory) and their addresses; units and distribution groups are few (the
organisation's tree and its lists) and are read whole, then matched by the
caller on folded names like the accounts.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from .accounts import _SELECT, Account, _account
from .groups import Group, _group
from .units import Unit, _unit

__all__ = ["all_groups", "all_units", "search_accounts"]


def _like(term: str) -> str:
    """``term`` as a LIKE substring pattern (its own % _ \\ matched literally)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_accounts(conn: asyncpg.Connection, *, term: str | None,
                          kinds: Sequence[str] | None, limit: int) -> list[Account]:
    """Enabled accounts whose folded text or one of whose addresses contains
    ``term`` (folded by the caller; None: any), of one of ``kinds`` (None: any)."""
    rows = await conn.fetch(
        _SELECT
        + r""" WHERE a.enabled
              AND ($1::text[] IS NULL OR a.kind = ANY($1))
              AND ($2::text IS NULL OR a.search_text LIKE $2 ESCAPE '\'
                   OR EXISTS (SELECT 1 FROM addresses x WHERE x.account_id = a.id
                              AND x.address LIKE $2 ESCAPE '\'))
            ORDER BY a.address LIMIT $3""",
        list(kinds) if kinds is not None else None,
        _like(term) if term else None,
        limit,
    )
    return [_account(r) for r in rows]


async def all_units(conn: asyncpg.Connection) -> list[Unit]:
    return [_unit(r) for r in await conn.fetch("SELECT * FROM units ORDER BY name")]


async def all_groups(conn: asyncpg.Connection) -> list[Group]:
    return [_group(r) for r in await conn.fetch("SELECT * FROM groups ORDER BY name")]
