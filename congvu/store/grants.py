"""Delegation grants: an owner lets a delegate act on its mail or calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .errors import NotFound

SCOPES = (
    "mail-read",
    "mail-manage",
    "mail-send-on-behalf",
    "mail-send-as",
    "calendar-read",
    "calendar-write",
)


@dataclass(frozen=True)
class Grant:
    id: int
    owner_id: int
    owner: str
    delegate_id: int
    delegate: str
    scopes: tuple[str, ...]
    valid_from: datetime | None
    valid_until: datetime | None
    granted_by: str
    created_at: datetime

    def active(self, now: datetime) -> bool:
        """Expired or not-yet-valid grants stop working without anyone removing them."""
        if self.valid_from is not None and now < self.valid_from:
            return False
        if self.valid_until is not None and now >= self.valid_until:
            return False
        return True


_SELECT = """
SELECT g.*, o.address AS owner, d.address AS delegate
FROM grants g JOIN accounts o ON o.id = g.owner_id JOIN accounts d ON d.id = g.delegate_id
"""


def _grant(r: asyncpg.Record) -> Grant:
    return Grant(
        r["id"], r["owner_id"], r["owner"], r["delegate_id"], r["delegate"], tuple(r["scopes"]),
        r["valid_from"], r["valid_until"], r["granted_by"], r["created_at"],
    )


async def upsert(
    conn: asyncpg.Connection,
    owner_id: int,
    delegate_id: int,
    scopes: list[str],
    valid_from: datetime | None,
    valid_until: datetime | None,
    granted_by: str,
) -> Grant:
    """Grant again replaces the scopes and window of an existing grant."""
    gid = await conn.fetchval(
        """INSERT INTO grants (owner_id, delegate_id, scopes, valid_from, valid_until, granted_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (owner_id, delegate_id) DO UPDATE
             SET scopes = EXCLUDED.scopes, valid_from = EXCLUDED.valid_from,
                 valid_until = EXCLUDED.valid_until, granted_by = EXCLUDED.granted_by,
                 created_at = now()
           RETURNING id""",
        owner_id, delegate_id, sorted(set(scopes)), valid_from, valid_until, granted_by,
    )
    return _grant(await conn.fetchrow(_SELECT + " WHERE g.id = $1", gid))


async def revoke(conn: asyncpg.Connection, owner_id: int, delegate_id: int) -> Grant:
    row = await conn.fetchrow(
        _SELECT + " WHERE g.owner_id = $1 AND g.delegate_id = $2", owner_id, delegate_id
    )
    if row is None:
        raise NotFound("no such delegation")
    await conn.execute("DELETE FROM grants WHERE id = $1", row["id"])
    return _grant(row)


async def list_grants(
    conn: asyncpg.Connection, *, owner_id: int | None = None, delegate_id: int | None = None
) -> list[Grant]:
    rows = await conn.fetch(
        _SELECT
        + """ WHERE ($1::int IS NULL OR g.owner_id = $1)
              AND ($2::int IS NULL OR g.delegate_id = $2)
            ORDER BY o.address, d.address""",
        owner_id,
        delegate_id,
    )
    return [_grant(r) for r in rows]


async def find(conn: asyncpg.Connection, owner_id: int, delegate_id: int) -> Grant | None:
    row = await conn.fetchrow(
        _SELECT + " WHERE g.owner_id = $1 AND g.delegate_id = $2", owner_id, delegate_id
    )
    return _grant(row) if row else None
