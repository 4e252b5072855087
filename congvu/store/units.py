"""The unit tree (city -> district or department -> commune or ward).

Each unit keeps its materialized path of ids (``/1/5/9/``) and its depth, so
"this unit and everything below it" is one indexed prefix match.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .errors import Conflict, Invalid, NotFound


@dataclass(frozen=True)
class Unit:
    id: int
    slug: str
    name: str
    parent_id: int | None
    path: str
    depth: int


def _unit(r: asyncpg.Record) -> Unit:
    return Unit(r["id"], r["slug"], r["name"], r["parent_id"], r["path"], r["depth"])


async def get(conn: asyncpg.Connection, slug: str) -> Unit:
    row = await conn.fetchrow("SELECT * FROM units WHERE slug = $1", slug)
    if row is None:
        raise NotFound(f"unknown unit {slug!r}")
    return _unit(row)


async def get_by_id(conn: asyncpg.Connection, unit_id: int) -> Unit:
    row = await conn.fetchrow("SELECT * FROM units WHERE id = $1", unit_id)
    if row is None:
        raise NotFound(f"unknown unit id {unit_id}")
    return _unit(row)


async def list_all(conn: asyncpg.Connection) -> list[Unit]:
    """Every unit in tree order (parents before children, siblings by name)."""
    rows = await conn.fetch("SELECT * FROM units")
    units = [_unit(r) for r in rows]
    children: dict[int | None, list[Unit]] = {}
    for u in units:
        children.setdefault(u.parent_id, []).append(u)
    out: list[Unit] = []

    def walk(parent: int | None) -> None:
        for u in sorted(children.get(parent, []), key=lambda x: x.name):
            out.append(u)
            walk(u.id)

    walk(None)
    return out


async def subtree_ids(conn: asyncpg.Connection, unit: Unit) -> list[int]:
    rows = await conn.fetch("SELECT id FROM units WHERE path LIKE $1 || '%'", unit.path)
    return [r["id"] for r in rows]


async def ancestors(conn: asyncpg.Connection, unit: Unit) -> list[Unit]:
    """From the top of the tree down to the unit's parent."""
    ids = [int(x) for x in unit.path.strip("/").split("/")[:-1]]
    if not ids:
        return []
    rows = await conn.fetch("SELECT * FROM units WHERE id = ANY($1::int[])", ids)
    by_id = {r["id"]: _unit(r) for r in rows}
    return [by_id[i] for i in ids]


async def add(
    conn: asyncpg.Connection, slug: str, name: str, parent: Unit | None, max_depth: int
) -> Unit:
    depth = 0 if parent is None else parent.depth + 1
    if depth >= max_depth:
        raise Invalid(f"unit tree has only {max_depth} levels; {parent.slug if parent else ''}"
                      " is on the lowest")
    try:
        row = await conn.fetchrow(
            """INSERT INTO units (slug, name, parent_id, path, depth)
               VALUES ($1, $2, $3, '', $4) RETURNING *""",
            slug,
            name,
            parent.id if parent else None,
            depth,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"unit {slug!r} already exists") from None
    path = (parent.path if parent else "/") + f"{row['id']}/"
    row = await conn.fetchrow("UPDATE units SET path = $2 WHERE id = $1 RETURNING *", row["id"], path)
    return _unit(row)


async def rename(conn: asyncpg.Connection, unit: Unit, name: str) -> Unit:
    row = await conn.fetchrow("UPDATE units SET name = $2 WHERE id = $1 RETURNING *", unit.id, name)
    return _unit(row)


async def move(
    conn: asyncpg.Connection, unit: Unit, new_parent: Unit | None, max_depth: int
) -> Unit:
    """Move ``unit`` and its whole subtree under ``new_parent`` (None: to the top)."""
    if new_parent is not None and new_parent.path.startswith(unit.path):
        raise Conflict(f"cannot move {unit.slug} under itself or its own sub-unit {new_parent.slug}")
    deepest = await conn.fetchval(
        "SELECT max(depth) FROM units WHERE path LIKE $1 || '%'", unit.path
    )
    new_depth = 0 if new_parent is None else new_parent.depth + 1
    shift = new_depth - unit.depth
    if deepest + shift >= max_depth:
        raise Invalid(f"moving {unit.slug} there would make the tree deeper than {max_depth} levels")
    new_path = (new_parent.path if new_parent else "/") + f"{unit.id}/"
    await conn.execute(
        """UPDATE units SET path = $2 || substr(path, length($1) + 1), depth = depth + $3
           WHERE path LIKE $1 || '%'""",
        unit.path,
        new_path,
        shift,
    )
    row = await conn.fetchrow(
        "UPDATE units SET parent_id = $2 WHERE id = $1 RETURNING *",
        unit.id,
        new_parent.id if new_parent else None,
    )
    return _unit(row)
