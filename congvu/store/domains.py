"""Domains served by this installation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .errors import Conflict, NotFound


@dataclass(frozen=True)
class Domain:
    id: int
    name: str
    created_at: datetime


def _domain(r: asyncpg.Record) -> Domain:
    return Domain(r["id"], r["name"], r["created_at"])


async def add(conn: asyncpg.Connection, name: str) -> Domain:
    row = await conn.fetchrow(
        "INSERT INTO domains (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING *", name
    )
    if row is None:
        raise Conflict(f"domain {name} already exists")
    return _domain(row)


async def get(conn: asyncpg.Connection, name: str) -> Domain:
    row = await conn.fetchrow("SELECT * FROM domains WHERE name = $1", name)
    if row is None:
        raise NotFound(f"domain {name} is not served here")
    return _domain(row)


async def list_all(conn: asyncpg.Connection) -> list[Domain]:
    return [_domain(r) for r in await conn.fetch("SELECT * FROM domains ORDER BY name")]


async def is_local(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", name))
