"""Set-based calendar reads and writes over many principals at once.

Implicit scheduling of a meeting with many internal attendees (RFC 6638 §3.2)
touches two collections of every attendee: the copy in their calendar and
the message in their schedule inbox. Done one attendee at a time that is
about ten statements each; here the same work is a fixed handful of
statements whatever the number of attendees:

- ``accounts_by_address(conn, addresses)``: where each address leads (an
  enabled account or alias here, a domain we do not host, or nothing usable),
  as ``congvu.calendar.scheduling.resolve`` decides one at a time.
- ``collections_of(conn, account_ids)``: their ``calendar`` collections and
  schedule inboxes; ``ensure_defaults`` makes the missing default calendars
  and inboxes in one insert.
- ``objects_with_uid(conn, account_ids, uid)``: every object with the UID in
  any of their collections (attendee copies and inbox messages).
- ``taken_hrefs(conn, calendars, href)``: which of these calendars already
  use an href.
- ``put_objects(conn, items)``: create or replace one object in each of many
  collections in one statement, each collection taking its next RFC 6578
  change number exactly as ``congvu.store.calendars.put_object`` does.

Nothing here checks rights or takes scheduling locks: the caller does
(``congvu.store.scheduling.lock_accounts`` first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from .accounts import _SELECT as _ACCOUNT_SELECT
from .accounts import Account, _account
from .calendars import (
    _OBJ_COLS,
    _UPSERT_INTO,
    _UPSERT_ON_CONFLICT,
    _CAL_COLS,
    DEFAULT_NAMES,
    SPECIAL_NAMES,
    STAMP,
    Calendar,
    ObjectIndex,
    StoredObject,
    _calendar,
    _object,
    make_etag,
    span_bucket,
)
from .errors import NotFound

__all__ = ["Found", "PutItem", "accounts_by_address", "collections_of", "ensure_defaults",
           "objects_with_uid", "put_objects", "taken_hrefs"]


@dataclass(frozen=True, slots=True)
class Found:
    """Where one address leads: ``local`` (with the account), ``remote`` or ``unknown``."""

    kind: str
    account: Account | None = None


async def accounts_by_address(conn: asyncpg.Connection,
                              addresses: Sequence[str]) -> dict[str, Found]:
    """Each (lower-case, ``mailto:``-less) address: an enabled account or alias
    here is ``local``; an address in a domain we do not host ``remote``;
    anything else (unknown, disabled, a group address) ``unknown``."""
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    rows = await conn.fetch(
        """SELECT q.address, x.kind, x.account_id, a.enabled,
                  EXISTS (SELECT 1 FROM domains d WHERE d.name = split_part(q.address, '@', 2))
                      AS local
           FROM unnest($1::text[]) AS q(address)
           LEFT JOIN addresses x ON x.address = q.address
           LEFT JOIN accounts a ON a.id = x.account_id""",
        wanted,
    )
    ids = {r["account_id"] for r in rows
           if r["kind"] in ("account", "alias") and r["enabled"] and r["account_id"]}
    accounts = {}
    if ids:
        accounts = {r["id"]: _account(r) for r in await conn.fetch(
            _ACCOUNT_SELECT + " WHERE a.id = ANY($1::int[])", sorted(ids))}
    out: dict[str, Found] = {}
    for r in rows:
        address = r["address"]
        if "@" not in address:
            out[address] = Found("unknown")
        elif r["kind"] is None:
            out[address] = Found("unknown" if r["local"] else "remote")
        elif r["account_id"] in accounts:
            out[address] = Found("local", accounts[r["account_id"]])
        else:
            out[address] = Found("unknown")
    return out


async def collections_of(conn: asyncpg.Connection,
                         account_ids: Sequence[int]) -> list[Calendar]:
    """The ``calendar`` collections and schedule inboxes of these accounts."""
    rows = await conn.fetch(
        f"""SELECT {_CAL_COLS} FROM calendars
            WHERE owner_id = ANY($1::int[]) AND owner_kind = 'account'
              AND kind IN ('calendar', 'schedule-inbox')""",
        sorted(set(account_ids)),
    )
    return [_calendar(r) for r in rows]


async def ensure_defaults(conn: asyncpg.Connection, account_ids: Sequence[int],
                          kind: str) -> None:
    """Make the default ``calendar`` (or ``schedule-inbox``) of every account
    that has none, as ``congvu.store.calendars.default_calendar`` /
    ``special_collection`` would on first use (same names and labels); an
    account whose name is taken by another collection is left for those."""
    name = DEFAULT_NAMES["account"] if kind == "calendar" else SPECIAL_NAMES[kind]
    label = "Lịch" if kind == "calendar" else ""
    await conn.execute(
        """INSERT INTO calendars (owner_id, owner_kind, account_id, name, kind, displayname,
               is_default)
           SELECT id, 'account', id, $2, $3, $4, true FROM unnest($1::int[]) AS t(id)
           ORDER BY id
           ON CONFLICT DO NOTHING""",
        sorted(set(account_ids)), name, kind, label,
    )


async def objects_with_uid(conn: asyncpg.Connection, account_ids: Sequence[int],
                           uid: str) -> list[StoredObject]:
    """Every object with this UID in any collection owned by these ids (the
    caller keeps those of the account collections it listed)."""
    rows = await conn.fetch(
        f"SELECT {_OBJ_COLS} FROM calendar_objects"
        " WHERE owner_id = ANY($1::int[]) AND uid = $2 AND modseq > 0",  # the UID index (012)
        sorted(set(account_ids)), uid,
    )
    return [_object(r) for r in rows]


async def taken_hrefs(conn: asyncpg.Connection, cals: Sequence[Calendar],
                      href: str) -> set[tuple[int, int]]:
    """(owner_id, calendar id) of the calendars among ``cals`` that hold ``href``."""
    if not cals:
        return set()
    rows = await conn.fetch(
        """SELECT o.owner_id, o.calendar_id FROM calendar_objects o
           JOIN unnest($1::int[], $2::bigint[]) AS c(owner_id, id)
             ON o.owner_id = c.owner_id AND o.calendar_id = c.id
           WHERE o.href = $3""",
        [c.owner_id for c in cals], [c.id for c in cals], href,
    )
    return {(r["owner_id"], r["calendar_id"]) for r in rows}


@dataclass(frozen=True, slots=True)
class PutItem:
    calendar: Calendar
    href: str
    index: ObjectIndex
    ics: bytes | str
    schedule_tag: str | None = None


# The statement of calendars.put_object over many (collection, href) pairs:
# the change number (this transaction's id, migration 011), tombstones and old
# instances of the hrefs dropped, objects upserted.
_PUT_MANY = f"""
WITH v AS (
    SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                         $10::bool[], $11::smallint[], $12::text[], $13::text[], $14::int[],
                         $15::bool[], $16::text[])
        AS t(owner_id, calendar_id, href, uid, etag, ics, component, first_start, last_end,
             recurring, span_bucket, class, schedule_tag, size, instances_indexed, floating_tz)),
seq AS (
    SELECT c.owner_id, c.id, {STAMP} AS sync_seq, c.kind = 'schedule-inbox' AS in_inbox
    FROM calendars c JOIN v ON c.owner_id = v.owner_id AND c.id = v.calendar_id),
gone AS (
    DELETE FROM calendar_tombstones t USING v
    WHERE t.owner_id = v.owner_id AND t.calendar_id = v.calendar_id AND t.href = v.href),
old_instances AS (
    DELETE FROM calendar_instances i USING v
    WHERE i.owner_id = v.owner_id AND i.calendar_id = v.calendar_id AND i.href = v.href)
{_UPSERT_INTO}
SELECT v.owner_id, v.calendar_id, v.href, v.uid, v.etag, v.ics, v.component, v.first_start,
       v.last_end, v.recurring, v.span_bucket, v.class, v.schedule_tag, seq.sync_seq, v.size,
       v.instances_indexed, v.floating_tz, seq.in_inbox
FROM v JOIN seq ON seq.owner_id = v.owner_id AND seq.id = v.calendar_id
{_UPSERT_ON_CONFLICT}
RETURNING {", ".join(c.strip() for c in _OBJ_COLS.split(","))}"""


async def put_objects(conn: asyncpg.Connection, items: Sequence[PutItem]) -> list[StoredObject]:
    """Create or replace one object in each of many collections, in one statement.

    At most one item per collection. UIDs are
    not checked here: the caller looked them up (``objects_with_uid``); the
    unique index still guards the table.
    """
    if not items:
        return []
    keys = {(i.calendar.owner_id, i.calendar.id) for i in items}
    if len(keys) != len(items):
        raise ValueError("put_objects takes one object per collection")
    texts = [i.ics.decode("utf-8") if isinstance(i.ics, bytes) else i.ics for i in items]
    # a meeting's copies and messages are mostly one text: hash and measure each once
    facts: dict[str, tuple[str, int]] = {}
    for t in texts:
        if t not in facts:
            facts[t] = (make_etag(t), len(t.encode("utf-8")))
    try:
        rows = await conn.fetch(
            _PUT_MANY,
            [i.calendar.owner_id for i in items], [i.calendar.id for i in items],
            [i.href for i in items], [i.index.uid for i in items], [facts[t][0] for t in texts],
            texts, [i.index.component for i in items], [i.index.first_start for i in items],
            [i.index.last_end for i in items], [i.index.recurring for i in items],
            [span_bucket(i.index) for i in items], [i.index.class_ for i in items],
            [i.schedule_tag for i in items], [facts[t][1] for t in texts],
            [i.index.instances is not None for i in items], [i.index.floating_tz for i in items],
        )
    except asyncpg.ForeignKeyViolationError:  # a calendar went away meanwhile
        rows = []
    if len(rows) != len(items):
        raise NotFound("a calendar is gone")
    spans = [(i.calendar.owner_id, i.calendar.id, i.href, s, e)
             for i in items for s, e in (i.index.instances or ())]
    if spans:
        await conn.execute(
            """INSERT INTO calendar_instances (owner_id, calendar_id, href, start_at, end_at)
               SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::timestamptz[],
                                    $5::timestamptz[])
               ON CONFLICT DO NOTHING""",
            *(list(col) for col in zip(*spans)),
        )
    return [_object(r) for r in rows]
