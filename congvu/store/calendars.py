"""Calendar collections and calendar object resources (CalDAV), RFC 6578 sync state.

All functions take an asyncpg connection (``conn``); call them inside
``db.transaction()`` when several must commit together (a PUT and its
scheduling side effects). Nothing here checks rights: the caller asks
``congvu.directory.authz`` first. Rows come back as frozen dataclasses.

Owners
    ``Owner(kind, id)``: ``account_owner(account)`` or ``unit_owner(unit)``
    (a unit's work schedule is owned by the unit principal).

Collections (``Calendar``)
    ``list_calendars(conn, owner, kinds=None)``, ``get_calendar(conn, owner,
    name)``, ``get_calendar_by_id(conn, owner_id, calendar_id)``,
    ``create_calendar(conn, owner, name, kind=..., **props)``,
    ``default_calendar(conn, owner)`` (created on first use: ``calendar`` for
    an account, ``work-schedule`` for a unit), ``special_collection(conn,
    owner, kind)`` for ``schedule-inbox``/``schedule-outbox`` (created on
    first use, named ``inbox``/``outbox``), ``update_calendar``,
    ``delete_calendar``.

Objects (``StoredObject``)
    ``put_object(conn, cal, href, ObjectIndex, ics, schedule_tag=None)``
    creates or replaces (returns ``(obj, created)``; ``Conflict`` if another
    href of the calendar holds the UID). Most callers should use
    ``congvu.calendar.objects.write_object`` which parses the iCalendar text
    into the ``ObjectIndex`` first. ``get_object``, ``find_object``,
    ``find_by_uid(conn, cal, uid)``, ``find_uid(conn, owner, uid,
    kinds=("calendar",))`` (every calendar of the owner), ``delete_object``,
    ``move_object``, ``set_schedule_tag``, ``list_objects``, ``multiget``.

Queries
    ``objects_in_range(conn, cal, comp, start, end)``: candidates for an RFC
    4791 §9.9 time-range (a superset; open bounds allowed) from the indexed
    columns only. ``busy_objects(conn, owner, start, end)``: VEVENT candidates
    over all of the owner's ``calendar`` collections (free/busy).

Sync (RFC 6578)
    An object's or tombstone's ``modseq`` is the id of the transaction that
    wrote it (taken without a lock, so writers of one calendar never queue;
    migration 011). Ids come in start order, not commit order, so a token is a
    snapshot: ``"<calendar id>-<property changes>x<M>[.<id>...]"``, M the
    highest modseq the calendar held and the ids of transactions then still
    running below M (``Calendar.sync_mark``, computed by the database with
    every calendar read). The changes after it are the rows with modseq > M or
    modseq among those ids: nothing committed later is missed, and a change
    seen once is not reported again. ``sync_token(cal)`` (also getctag);
    ``changes_since(conn, cal, token)`` returns changed objects and removed
    hrefs, or raises ``InvalidSyncToken``.

Unit schedules and feeds
    ``get_publication``/``set_publication`` and ``create_feed``,
    ``active_feed``, ``revoke_feeds``, ``calendar_for_feed``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from .errors import Conflict, Invalid, NotFound, StoreError


class ObjectChanged(StoreError):
    """A conditional write (``put_object``/``delete_object`` with ``expect``)
    found the object no longer the version the caller read and checked: another
    writer committed in between. Nothing was written; the caller's transaction
    must be rolled back and the request decided again on fresh data (the CalDAV
    app runs it again, as after a deadlock)."""


ANY_VERSION = -1
"""``expect`` of ``put_object``/``delete_object``: no check (the default)."""

SPAN_BUCKETS = (timedelta(days=7), timedelta(days=92), timedelta(days=1100),
                timedelta(days=11000))
"""Longest span (last_end - first_start) of span buckets 0-3; bucket 0 holds
single (non-recurring) objects only, bucket 4 everything longer or unbounded."""
_FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def span_bucket(index: ObjectIndex) -> int:
    if index.last_end is None:
        return 4
    span = index.last_end - index.first_start
    for k, longest in enumerate(SPAN_BUCKETS):
        if span <= longest and (k > 0 or not index.recurring):
            return k
    return 4

SPECIAL_NAMES = {"schedule-inbox": "inbox", "schedule-outbox": "outbox"}
DEFAULT_NAMES = {"account": "calendar", "unit": "work-schedule"}


class InvalidSyncToken(Invalid):
    """RFC 6578 §3.2: the token is not one this collection handed out."""


@dataclass(frozen=True)
class Owner:
    kind: str  # account | unit
    id: int


def account_owner(account: Any) -> Owner:
    return Owner("account", account.id)


def unit_owner(unit: Any) -> Owner:
    return Owner("unit", unit.id)


@dataclass(frozen=True)
class Calendar:
    owner_id: int
    id: int
    owner_kind: str
    name: str
    kind: str
    displayname: str
    description: str
    color: str
    sort_order: int | None
    timezone: str
    components: tuple[str, ...]
    is_default: bool
    sync_seq: int  # property changes (PROPPATCH): getctag changes with them
    created_at: datetime
    # the snapshot part of the sync token ("<M>[.<running id>...]"), read with the row
    sync_mark: str = "0"

    @property
    def owner(self) -> Owner:
        return Owner(self.owner_kind, self.owner_id)

    @property
    def sync_token(self) -> str:
        return sync_token(self)


@dataclass(frozen=True)
class ObjectIndex:
    """What the store indexes about one object (from ``congvu.calendar.ical``)."""

    uid: str
    component: str
    first_start: datetime
    last_end: datetime | None
    recurring: bool
    class_: str = "PUBLIC"
    # every instance (start, end) of a recurring VEVENT, or None if not indexed
    instances: tuple[tuple[datetime, datetime], ...] | None = None
    # the zone floating times were read in (congvu.calendar.caltz), None if none float
    floating_tz: str | None = None


@dataclass(frozen=True)
class StoredObject:
    owner_id: int
    calendar_id: int
    href: str
    uid: str
    etag: str
    ics: str
    component: str
    first_start: datetime
    last_end: datetime | None
    recurring: bool
    class_: str
    schedule_tag: str | None
    modseq: int
    size: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ObjectTag:
    """Just what a listing of many objects needs (PROPFIND, sync)."""

    href: str
    etag: str
    component: str


@dataclass(frozen=True)
class Changes:
    token: str
    changed: list[StoredObject]
    removed: list[str]
    tags: list[ObjectTag] | None = None  # instead of ``changed`` when asked for
    truncated: bool = False  # RFC 6578 §3.6: more changes follow ``token``


def sync_token(cal: Calendar) -> str:
    return _token(cal, cal.sync_mark)


def _token(cal: Calendar, mark: str, after: str | None = None) -> str:
    """``<id>-<property changes>x<mark>[~<href, base64url>]`` (`parse_token`)."""
    tail = "~" + base64.urlsafe_b64encode(after.encode("utf-8")).decode("ascii") if after else ""
    return f"{cal.id}-{cal.sync_seq}x{mark}{tail}"


# Every read of a calendar row takes the snapshot part of its sync token along
# (migration 011: computed in the statement's own snapshot).
_CAL_COLS = "calendars.*, calendar_sync_mark(calendars.owner_id, calendars.id) AS sync_mark"
_C_COLS = _CAL_COLS.replace("calendars.", "c.")  # the same, for "calendars c"


def _calendar(r: asyncpg.Record) -> Calendar:
    return Calendar(
        r["owner_id"], r["id"], r["owner_kind"], r["name"], r["kind"], r["displayname"],
        r["description"], r["color"], r["sort_order"], r["timezone"], tuple(r["components"]),
        r["is_default"], r["sync_seq"], r["created_at"], r["sync_mark"],
    )


_OBJ_COLS = """owner_id, calendar_id, href, uid, etag, ics, component, first_start, last_end,
               recurring, class, schedule_tag, modseq, size, updated_at"""
_META_COLS = _OBJ_COLS.replace(" ics,", " ''::text AS ics,")

# The upsert of one stored object (put_object; calendar_batch.put_objects over
# many): the row it inserts, and what a write over an existing href replaces.
_UPSERT_INTO = """INSERT INTO calendar_objects (owner_id, calendar_id, href, uid, etag, ics, component,
    first_start, last_end, recurring, span_bucket, class, schedule_tag, modseq, size,
    instances_indexed, floating_tz, in_inbox)"""
_UPSERT_ON_CONFLICT = """ON CONFLICT (owner_id, calendar_id, href) DO UPDATE SET
    uid = EXCLUDED.uid, etag = EXCLUDED.etag, ics = EXCLUDED.ics,
    component = EXCLUDED.component, first_start = EXCLUDED.first_start,
    last_end = EXCLUDED.last_end, recurring = EXCLUDED.recurring,
    span_bucket = EXCLUDED.span_bucket, class = EXCLUDED.class,
    schedule_tag = EXCLUDED.schedule_tag, modseq = EXCLUDED.modseq,
    size = EXCLUDED.size, instances_indexed = EXCLUDED.instances_indexed,
    floating_tz = EXCLUDED.floating_tz, updated_at = now()"""


def _object(r: asyncpg.Record) -> StoredObject:
    return StoredObject(
        r["owner_id"], r["calendar_id"], r["href"], r["uid"], r["etag"], r["ics"],
        r["component"], r["first_start"], r["last_end"], r["recurring"], r["class"],
        r["schedule_tag"], r["modseq"], r["size"], r["updated_at"],
    )


def make_etag(ics: str) -> str:
    return '"' + hashlib.sha1(ics.encode("utf-8"), usedforsecurity=False).hexdigest() + '"'


# --- collections ---------------------------------------------------------------


async def list_calendars(
    conn: asyncpg.Connection, owner: Owner, kinds: Sequence[str] | None = None
) -> list[Calendar]:
    rows = await conn.fetch(
        f"""SELECT {_CAL_COLS} FROM calendars WHERE owner_id = $1 AND owner_kind = $2
             AND ($3::text[] IS NULL OR kind = ANY($3))
           ORDER BY is_default DESC, sort_order NULLS LAST, name""",
        owner.id, owner.kind, list(kinds) if kinds is not None else None,
    )
    return [_calendar(r) for r in rows]


async def get_calendar(conn: asyncpg.Connection, owner: Owner, name: str) -> Calendar:
    row = await conn.fetchrow(
        f"SELECT {_CAL_COLS} FROM calendars WHERE owner_id = $1 AND owner_kind = $2 AND name = $3",
        owner.id, owner.kind, name,
    )
    if row is None:
        raise NotFound(f"no calendar {name}")
    return _calendar(row)


async def get_calendar_by_id(conn: asyncpg.Connection, owner_id: int, calendar_id: int) -> Calendar:
    row = await conn.fetchrow(
        f"SELECT {_CAL_COLS} FROM calendars WHERE owner_id = $1 AND id = $2", owner_id, calendar_id
    )
    if row is None:
        raise NotFound(f"no calendar {calendar_id}")
    return _calendar(row)


async def lock_calendar(conn: asyncpg.Connection, cal: Calendar) -> Calendar:
    """The calendar row, locked until the transaction ends (fresh values)."""
    row = await conn.fetchrow(
        f"SELECT {_CAL_COLS} FROM calendars WHERE owner_id = $1 AND id = $2 FOR UPDATE", cal.owner_id, cal.id
    )
    if row is None:
        raise NotFound(f"no calendar {cal.id}")
    return _calendar(row)


async def create_calendar(
    conn: asyncpg.Connection,
    owner: Owner,
    name: str,
    *,
    kind: str = "calendar",
    displayname: str = "",
    description: str = "",
    color: str = "",
    sort_order: int | None = None,
    timezone: str = "",
    components: Sequence[str] = ("VEVENT", "VTODO"),
    is_default: bool = False,
) -> Calendar:
    if not name or "/" in name or name in (".", ".."):
        raise Invalid(f"bad calendar name {name!r}")
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO calendars (owner_id, owner_kind, account_id, unit_id, name, kind,
                   displayname, description, color, sort_order, timezone, components, is_default)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_CAL_COLS}""",
            owner.id, owner.kind,
            owner.id if owner.kind == "account" else None,
            owner.id if owner.kind == "unit" else None,
            name, kind, displayname, description, color, sort_order, timezone,
            list(components), is_default,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"calendar {name} already exists") from None
    return _calendar(row)


async def _ensure(
    conn: asyncpg.Connection, owner: Owner, kind: str, name: str, displayname: str
) -> Calendar:
    row = await conn.fetchrow(
        f"""SELECT {_CAL_COLS} FROM calendars WHERE owner_id = $1 AND owner_kind = $2 AND kind = $3
             AND is_default""",
        owner.id, owner.kind, kind,
    )
    if row is not None:
        return _calendar(row)
    row = await conn.fetchrow(
        f"""INSERT INTO calendars (owner_id, owner_kind, account_id, unit_id, name, kind,
               displayname, is_default)
           VALUES ($1, $2, $3, $4, $5, $6, $7, true)
           ON CONFLICT DO NOTHING RETURNING {_CAL_COLS}""",
        owner.id, owner.kind,
        owner.id if owner.kind == "account" else None,
        owner.id if owner.kind == "unit" else None,
        name, kind, displayname,
    )
    if row is None:  # created concurrently, or the name is taken by a user calendar
        row = await conn.fetchrow(
            f"""SELECT {_CAL_COLS} FROM calendars WHERE owner_id = $1 AND owner_kind = $2
                 AND ((kind = $3 AND is_default) OR name = $4)
               ORDER BY is_default DESC LIMIT 1""",
            owner.id, owner.kind, kind, name,
        )
        if row is None:
            raise Conflict(f"cannot create the {kind} collection")
    return _calendar(row)


async def default_calendar(
    conn: asyncpg.Connection, owner: Owner, displayname: str = ""
) -> Calendar:
    """The owner's default calendar (an account's, or a unit's work schedule),
    created on first use."""
    name = DEFAULT_NAMES[owner.kind]
    label = displayname or ("Lịch" if owner.kind == "account" else "Lịch công tác")
    return await _ensure(conn, owner, "calendar", name, label)


async def special_collection(conn: asyncpg.Connection, owner: Owner, kind: str) -> Calendar:
    """The RFC 6638 schedule inbox or outbox of an owner, created on first use."""
    if kind not in SPECIAL_NAMES:
        raise ValueError(kind)
    return await _ensure(conn, owner, kind, SPECIAL_NAMES[kind], "")


_UPDATABLE = {"displayname", "description", "color", "sort_order", "timezone", "components"}


async def update_calendar(conn: asyncpg.Connection, cal: Calendar, **changes: object) -> Calendar:
    """Change some of: displayname, description, color, sort_order, timezone, components.
    Property changes bump the sync token too (getctag: clients refetch properties)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    for column, value in changes.items():
        # column names come from the fixed set above, never from input
        await conn.execute(
            f"UPDATE calendars SET {column} = $3 WHERE owner_id = $1 AND id = $2",
            cal.owner_id, cal.id, list(value) if column == "components" else value,  # type: ignore[call-overload]
        )
    row = await conn.fetchrow(
        f"UPDATE calendars SET sync_seq = sync_seq + 1 WHERE owner_id = $1 AND id = $2 RETURNING {_CAL_COLS}",
        cal.owner_id, cal.id,
    )
    return _calendar(row)


async def delete_calendar(conn: asyncpg.Connection, cal: Calendar) -> None:
    await conn.execute("DELETE FROM calendars WHERE owner_id = $1 AND id = $2", cal.owner_id, cal.id)


# The change number of a write: the writing transaction's id (migration 011).
STAMP = "pg_current_xact_id()::text::bigint"


# --- objects -------------------------------------------------------------------


async def get_object(conn: asyncpg.Connection, cal: Calendar, href: str) -> StoredObject:
    obj = await find_object(conn, cal, href)
    if obj is None:
        raise NotFound(f"no object {href}")
    return obj


_FIND_BY = {
    column: f"SELECT {_OBJ_COLS} FROM calendar_objects"
            f" WHERE owner_id = $1 AND calendar_id = $2 AND {column} = $3"
    for column in ("href", "uid")
}


async def _find_by(conn: asyncpg.Connection, cal: Calendar, column: str,
                   value: str) -> StoredObject | None:
    row = await conn.fetchrow(_FIND_BY[column], cal.owner_id, cal.id, value)
    return _object(row) if row else None


async def find_object(conn: asyncpg.Connection, cal: Calendar, href: str) -> StoredObject | None:
    return await _find_by(conn, cal, "href", href)


async def find_by_uid(conn: asyncpg.Connection, cal: Calendar, uid: str) -> StoredObject | None:
    return await _find_by(conn, cal, "uid", uid)


async def find_all_by_uid(conn: asyncpg.Connection, cal: Calendar, uid: str) -> list[StoredObject]:
    """Every object with ``uid`` in ``cal`` (several only in a schedule inbox)."""
    rows = await conn.fetch(_FIND_BY["uid"] + " ORDER BY modseq", cal.owner_id, cal.id, uid)
    return [_object(r) for r in rows]


async def find_href_and_uid(
    conn: asyncpg.Connection, cal: Calendar, href: str, uid: str
) -> tuple[StoredObject | None, StoredObject | None]:
    """In one statement: the object at ``href`` and the object with ``uid`` (the
    same one, another one, or None each)."""
    rows = await conn.fetch(
        f"SELECT {_OBJ_COLS} FROM calendar_objects"
        " WHERE owner_id = $1 AND calendar_id = $2 AND (href = $3 OR (uid = $4 AND modseq > 0))",
        cal.owner_id, cal.id, href, uid,
    )
    objs = [_object(r) for r in rows]
    at = next((o for o in objs if o.href == href), None)
    same = next((o for o in objs if o.uid == uid), None)
    return at, same


async def find_uid(
    conn: asyncpg.Connection, owner: Owner, uid: str, kinds: Sequence[str] = ("calendar",)
) -> list[tuple[Calendar, StoredObject]]:
    """Every object with this UID in the owner's collections of the given kinds."""
    rows = await conn.fetch(
        f"""SELECT {_OBJ_COLS} FROM calendar_objects
            WHERE owner_id = $1 AND uid = $2 AND modseq > 0""",  # the UID index (012)
        owner.id, uid,
    )
    if not rows:
        return []
    cals = {c.id: c for c in await list_calendars(conn, owner, kinds)}
    found = [(cals[r["calendar_id"]], _object(r)) for r in rows if r["calendar_id"] in cals]
    found.sort(key=lambda pair: (not pair[0].is_default, pair[0].id))
    return found


async def put_object(
    conn: asyncpg.Connection,
    cal: Calendar,
    href: str,
    index: ObjectIndex,
    ics: str | bytes,
    schedule_tag: str | None = None,
    *,
    check_uid: bool = True,
    expect: int | None = ANY_VERSION,
) -> tuple[StoredObject, bool]:
    """Create or replace the object at ``href``; ``(object, created)``.

    ``Conflict`` when another href of this calendar holds the same UID
    (RFC 4791 §5.3.2.1 no-uid-conflict). ``check_uid=False`` is for callers
    that looked already (the unique index still guards the table).

    ``expect``: the ``modseq`` of the object the caller read at ``href`` (its
    If-Match, hooks and old body were decided on it), or None when it read
    none there. The write happens only if that is still so on the newest,
    locked version of the row; otherwise ``ObjectChanged`` (a lost update
    prevented) and the caller's transaction must be rolled back.
    """
    text = ics.decode("utf-8") if isinstance(ics, bytes) else ics
    # RFC 6638 §4: an inbox may hold several scheduling messages with one UID.
    if check_uid and cal.kind != "schedule-inbox":
        other = await conn.fetchval(
            "SELECT href FROM calendar_objects"
            " WHERE owner_id = $1 AND calendar_id = $2 AND uid = $3",
            cal.owner_id, cal.id, index.uid,
        )
        if other is not None and other != href:
            raise Conflict(f"UID {index.uid} is already used by {other}")
    bucket = span_bucket(index)
    # One statement: the change number (this transaction's id, RFC 6578 via
    # the snapshot tokens), drop a tombstone of the href, upsert.
    try:
        row = await conn.fetchrow(
            f"""WITH seq AS (
                    SELECT {STAMP} AS sync_seq, kind = 'schedule-inbox' AS in_inbox
                    FROM calendars WHERE owner_id = $1 AND id = $2),
                gone AS (
                    DELETE FROM calendar_tombstones
                    WHERE owner_id = $1 AND calendar_id = $2 AND href = $3),
                old_instances AS (
                    DELETE FROM calendar_instances
                    WHERE owner_id = $1 AND calendar_id = $2 AND href = $3)
                {_UPSERT_INTO}
                SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, seq.sync_seq, $14, $15,
                       $16, seq.in_inbox
                FROM seq
                {_UPSERT_ON_CONFLICT}
                WHERE $17::bigint = -1 OR calendar_objects.modseq = $17::bigint
                RETURNING {_OBJ_COLS}, (xmax = 0) AS inserted""",
            cal.owner_id, cal.id, href, index.uid, make_etag(text), text, index.component,
            index.first_start, index.last_end, index.recurring, bucket, index.class_,
            schedule_tag, len(text.encode("utf-8")), index.instances is not None, index.floating_tz,
            # None (nothing expected there): no stored version can match
            -2 if expect is None else expect,
        )
    except asyncpg.ForeignKeyViolationError:  # the calendar went away meanwhile
        row = None
    if expect != ANY_VERSION and (row is None or (expect is not None and row["inserted"])):
        # A row appeared, changed, or (inserted anew) went away since it was read.
        raise ObjectChanged(f"{href} changed meanwhile")
    if row is None:
        raise NotFound("calendar is gone")
    if index.instances:
        await _insert_instances(conn, cal, href, index.instances)
    return _object(row), bool(row["inserted"])


async def _insert_instances(conn: asyncpg.Connection, cal: Calendar, href: str,
                            spans: Sequence[tuple[datetime, datetime]]) -> None:
    await conn.execute(
        """INSERT INTO calendar_instances (owner_id, calendar_id, href, start_at, end_at)
           SELECT $1, $2, $3, s, e FROM unnest($4::timestamptz[], $5::timestamptz[]) AS t(s, e)
           ON CONFLICT DO NOTHING""",
        cal.owner_id, cal.id, href, [i[0] for i in spans], [i[1] for i in spans],
    )


async def stale_floating(
    conn: asyncpg.Connection, cal: Calendar, key: str, limit: int
) -> list[tuple[str, str, str]]:
    """(href, etag, ics) of objects whose floating times were indexed in another
    zone than ``key`` (congvu.calendar.objects.reindex_floating)."""
    rows = await conn.fetch(
        """SELECT href, etag, ics FROM calendar_objects
           WHERE owner_id = $1 AND calendar_id = $2 AND floating_tz IS NOT NULL
             AND floating_tz <> $3
           LIMIT $4""",
        cal.owner_id, cal.id, key, limit,
    )
    return [(r["href"], r["etag"], r["ics"]) for r in rows]


async def reindex_object(
    conn: asyncpg.Connection, cal: Calendar, href: str, etag: str, index: ObjectIndex | None
) -> None:
    """Replace the indexed columns of one object (body, ETag, modseq unchanged),
    unless it changed since it was read (``etag``). ``None``: the body no longer
    parses; it stays, a candidate for every range."""
    if index is None:
        index = ObjectIndex("", "", _FAR_PAST, None, True)
    status = await conn.execute(
        """UPDATE calendar_objects SET first_start = $5, last_end = $6, recurring = $7,
               span_bucket = $8, instances_indexed = $9, floating_tz = $10
           WHERE owner_id = $1 AND calendar_id = $2 AND href = $3 AND etag = $4""",
        cal.owner_id, cal.id, href, etag, index.first_start, index.last_end, index.recurring,
        span_bucket(index), index.instances is not None, index.floating_tz,
    )
    if status.split()[-1] == "0":
        return  # replaced meanwhile: the writer indexed it in the zone it read
    await conn.execute(
        "DELETE FROM calendar_instances WHERE owner_id = $1 AND calendar_id = $2 AND href = $3",
        cal.owner_id, cal.id, href,
    )
    if index.instances:
        await _insert_instances(conn, cal, href, index.instances)


async def calendars_with_stale_floating(
    conn: asyncpg.Connection, default_key: str, limit: int = 100
) -> list[Calendar]:
    """Calendars holding objects indexed in another zone than theirs now (the
    key computed as congvu.calendar.caltz.key_for does, in SQL)."""
    rows = await conn.fetch(
        f"""SELECT {_C_COLS} FROM calendars c
           WHERE EXISTS (
               SELECT 1 FROM calendar_objects o
               WHERE o.owner_id = c.owner_id AND o.calendar_id = c.id
                 AND o.floating_tz IS NOT NULL
                 AND o.floating_tz <> CASE WHEN c.timezone = '' THEN $1
                                           ELSE 'vtz:' || md5(c.timezone) END)
           LIMIT $2""",
        default_key, limit,
    )
    return [_calendar(r) for r in rows]


async def set_schedule_tag(
    conn: asyncpg.Connection, cal: Calendar, href: str, schedule_tag: str | None
) -> None:
    await conn.execute(
        """UPDATE calendar_objects SET schedule_tag = $4
           WHERE owner_id = $1 AND calendar_id = $2 AND href = $3""",
        cal.owner_id, cal.id, href, schedule_tag,
    )


async def delete_object(conn: asyncpg.Connection, cal: Calendar, href: str,
                        expect: int = ANY_VERSION) -> StoredObject:
    """Remove the object at ``href`` (a tombstone for sync). ``expect``: the
    ``modseq`` of the version the caller read and checked; ``ObjectChanged``
    if the newest version is another one or it is gone (see ``put_object``)."""
    row = await conn.fetchrow(
        f"""DELETE FROM calendar_objects WHERE owner_id = $1 AND calendar_id = $2 AND href = $3
              AND ($4::bigint = -1 OR modseq = $4::bigint)
            RETURNING {_OBJ_COLS}""",
        cal.owner_id, cal.id, href, expect,
    )
    if row is None and expect != ANY_VERSION:
        raise ObjectChanged(f"{href} changed meanwhile")
    if row is None:
        raise NotFound(f"no object {href}")
    await conn.execute(
        f"""INSERT INTO calendar_tombstones (owner_id, calendar_id, href, modseq)
            VALUES ($1, $2, $3, {STAMP})
            ON CONFLICT (owner_id, calendar_id, href) DO UPDATE
              SET modseq = EXCLUDED.modseq, removed_at = now()""",
        cal.owner_id, cal.id, href,
    )
    return _object(row)


async def move_object(
    conn: asyncpg.Connection, src: Calendar, href: str, dst: Calendar, dst_href: str,
    index: ObjectIndex, *, expect: int = ANY_VERSION,
) -> tuple[StoredObject, bool]:
    """RFC 4918 §9.9 MOVE: remove at the source, create at the target.

    ``expect``: the ``modseq`` of the source object the caller read (and
    indexed); then nothing may be at the target either (the caller removed
    what was there). ``ObjectChanged`` otherwise, as for ``put_object``."""
    obj = await delete_object(conn, src, href, expect=expect)
    if src.id == dst.id:
        dst = await get_calendar_by_id(conn, dst.owner_id, dst.id)
    return await put_object(conn, dst, dst_href, index, obj.ics, obj.schedule_tag,
                            expect=ANY_VERSION if expect == ANY_VERSION else None)


async def list_objects(
    conn: asyncpg.Connection, cal: Calendar, *, with_data: bool = False
) -> list[StoredObject]:
    rows = await conn.fetch(
        f"SELECT {_OBJ_COLS if with_data else _META_COLS} FROM calendar_objects"
        " WHERE owner_id = $1 AND calendar_id = $2 ORDER BY href",
        cal.owner_id, cal.id,
    )
    return [_object(r) for r in rows]


# "modseq > 0" (always true) lets the partial change-number indexes serve the
# sync queries below (migration 010: only queries that say so can use them).


async def list_tags(conn: asyncpg.Connection, cal: Calendar,
                    since: SyncPoint | None = None) -> list[ObjectTag]:
    """href and ETag of every object (changed after ``since``)."""
    rows = await conn.fetch(
        f"""SELECT href, etag, component FROM calendar_objects
            WHERE owner_id = $1 AND calendar_id = $2 AND {_AFTER}""",
        cal.owner_id, cal.id, *(since or START).sql(),
    )
    return [ObjectTag(r[0], r[1], r[2]) for r in rows]


async def count_objects(conn: asyncpg.Connection, cal: Calendar) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM calendar_objects WHERE owner_id = $1 AND calendar_id = $2",
        cal.owner_id, cal.id,
    ))


async def multiget(
    conn: asyncpg.Connection, cal: Calendar, hrefs: Sequence[str], *, with_data: bool = True
) -> list[StoredObject]:
    rows = await conn.fetch(
        f"SELECT {_OBJ_COLS if with_data else _META_COLS} FROM calendar_objects"
        " WHERE owner_id = $1 AND calendar_id = $2 AND href = ANY($3::text[])",
        cal.owner_id, cal.id, list(hrefs),
    )
    return [_object(r) for r in rows]


# --- time-range candidates -------------------------------------------------------

_OVERLAP = """(({e} = {s} AND $4 <= {s} AND {s} < $5)
            OR ({e} > {s} AND $4 < {e} AND $5 > {s}))"""

# RFC 4791 §9.9 from the columns: a single VEVENT by its start and end, a
# series by its indexed instances; NULL where only parsing can tell.
_HIT = """CASE
      WHEN component <> 'VEVENT' THEN NULL
      WHEN NOT recurring AND last_end IS NOT NULL THEN """ + _OVERLAP.format(
    s="first_start", e="last_end") + """
      WHEN instances_indexed THEN EXISTS (
          SELECT 1 FROM calendar_instances i
          WHERE i.owner_id = o.owner_id AND i.calendar_id = o.calendar_id AND i.href = o.href
            AND i.start_at <= $5 AND i.end_at >= $4
            AND """ + _OVERLAP.format(s="i.start_at", e="i.end_at") + """)
      END"""

_BRANCH = """
    SELECT * FROM calendar_objects
    WHERE owner_id = $1 AND calendar_id = ANY($2::bigint[]) AND ($3::text IS NULL OR component = $3)
      AND span_bucket = {k} AND {bound}"""

# One bounded range scan of the span index per bucket 0-3 (constant bounds,
# so each branch plans to a plain index scan), bucket 4 by last_end; the
# exact answer is computed once over their union.
_RANGE_SQL = ("SELECT * FROM (SELECT {cols}, " + _HIT + " AS hit FROM (" + " UNION ALL ".join(
    [_BRANCH.format(k=k, bound=f"first_start >= $4 - interval '{longest.days} days'"
                                " AND first_start <= $5 AND last_end >= $4")
     for k, longest in enumerate(SPAN_BUCKETS)]
    + [_BRANCH.format(k=4, bound="(last_end IS NULL OR last_end >= $4) AND first_start <= $5")]
) + ") o) x WHERE hit IS NOT FALSE")
_RANGE_SQL = _RANGE_SQL.replace("$4", "$4::timestamptz").replace("$5", "$5::timestamptz")


async def objects_in_range(
    conn: asyncpg.Connection,
    cal: Calendar,
    component: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    with_data: bool = True,
) -> list[StoredObject]:
    """Candidates whose instances may overlap [start, end] (either bound may be None)."""
    return await _in_range(conn, cal.owner_id, [cal.id], component, start, end, with_data)


async def _in_range(
    conn: asyncpg.Connection, owner_id: int, cal_ids: list[int], component: str | None,
    start: datetime | None, end: datetime | None, with_data: bool,
) -> list[StoredObject]:
    return [obj for obj, _ in await _decided(conn, owner_id, cal_ids, component, start, end,
                                            with_data)]


async def _decided(
    conn: asyncpg.Connection, owner_id: int, cal_ids: list[int], component: str | None,
    start: datetime | None, end: datetime | None, with_data: bool,
) -> list[tuple[StoredObject, bool | None]]:
    sql = _RANGE_SQL.format(cols=_OBJ_COLS if with_data else _META_COLS)
    # Open bounds become far-away instants, so every condition can use the index.
    args = (owner_id, cal_ids, component, start or _FAR_PAST, end or _FAR_FUTURE)
    if conn.is_in_transaction():
        rows = await conn.fetch(sql, *args)
    else:
        # Each branch reads its own partial index whatever the bounds, so the
        # plan does not depend on them; PostgreSQL would still plan the five
        # branches anew for every query (about 1 ms, half the time of a
        # week's query) as its custom plans look cheaper than the generic one.
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            rows = await conn.fetch(sql, *args)
    return [(_object(r), r["hit"]) for r in rows]


async def objects_overlapping(
    conn: asyncpg.Connection,
    cal: Calendar,
    component: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    with_data: bool = True,
) -> list[tuple[StoredObject, bool | None]]:
    """Like `objects_in_range`, with the RFC 4791 §9.9 answer where the columns
    give it exactly: True for a VEVENT that overlaps (a single event by its
    start and end, a recurring one by its indexed instances), None where the
    caller must parse. Objects known not to overlap are left out."""
    return await _decided(conn, cal.owner_id, [cal.id], component, start, end, with_data)


async def busy_objects(
    conn: asyncpg.Connection, owner: Owner, start: datetime, end: datetime
) -> list[StoredObject]:
    """VEVENT candidates over every ``calendar`` collection of the owner (free/busy)."""
    ids = [c.id for c in await list_calendars(conn, owner, ("calendar",))]
    if not ids:
        return []
    return await _in_range(conn, owner.id, ids, "VEVENT", start, end, True)


# --- sync ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncPoint:
    """Where a sync token stands: the calendar's highest change number then
    (``top``), the ids of transactions then running below it (``running``:
    their changes may commit later), and after a page cut by DAV:limit the
    href the page ended with among the changes numbered ``top`` (``after``)."""

    top: int = 0
    running: tuple[int, ...] = ()
    after: str | None = None

    def sql(self) -> tuple[int, list[int], str | None, int]:
        """$3..$6 of `_AFTER`."""
        return self.top, list(self.running), self.after, min((self.top, *self.running))


START = SyncPoint()

# The rows changed after a SyncPoint ($3 top, $4 running, $5 after): newer than
# top, written by a transaction that was running, or (a page's remainder)
# numbered top with an href after the page's last. $6, the least of top and
# running, bounds the change-number index scan (the OR alone would not).
_AFTER = """modseq > 0 AND modseq >= $6
    AND (modseq > $3 OR modseq = ANY($4::bigint[])
         OR (modseq = $3 AND $5::text IS NOT NULL AND href > $5::text))"""


def _parse_mark(mark: str) -> tuple[int, tuple[int, ...]]:
    top, *running = mark.split(".")
    return int(top), tuple(int(x) for x in running)


def parse_token(cal: Calendar, token: str) -> SyncPoint:
    """The SyncPoint of a token this collection handed out, else InvalidSyncToken."""
    token = token.strip()
    if "/" in token:  # tolerate URI-style tokens clients echo back unchanged
        token = token.rsplit("/", 1)[-1]
    cal_part, _, rest = token.partition("-")
    props, _, mark = rest.partition("x")
    mark, _, after = mark.partition("~")
    try:
        if cal_part != str(cal.id) or not props.isdigit() or not mark:
            raise ValueError(token)
        top, running = _parse_mark(mark)
        now_top, _ = _parse_mark(cal.sync_mark)
        page = base64.urlsafe_b64decode(after.encode("ascii")).decode("utf-8") if after else None
    except (ValueError, UnicodeError):
        raise InvalidSyncToken("unknown sync token") from None
    if top > now_top or any(x > top or x <= 0 for x in running) or top < 0:
        raise InvalidSyncToken("sync token from the future")
    return SyncPoint(top, running, page)


async def changes_since(
    conn: asyncpg.Connection, cal: Calendar, token: str, *, with_data: bool = False,
    tags_only: bool = False, limit: int | None = None,
) -> Changes:
    """RFC 6578 §3.2: what changed after ``token`` ("" = everything, no removals).
    ``tags_only`` fills ``tags`` (href, ETag) instead of ``changed``.

    ``limit`` (RFC 6578 §3.7 DAV:limit): at most that many changes and removals,
    the oldest first; when more remain, ``truncated`` is set and ``token``
    names the last change returned, so a sync from it continues there.

    The token handed back is read before the changes (its own statement): a
    change committed in between is reported now and, harmlessly, once more
    next time; none is ever missed."""
    cal = await get_calendar_by_id(conn, cal.owner_id, cal.id)
    point = parse_token(cal, token) if token else START
    if limit is not None:
        return await _limited_changes(conn, cal, point, limit, with_data)
    removed: list[str] = []
    if point != START:
        removed = [r["href"] for r in await conn.fetch(
            f"""SELECT href FROM calendar_tombstones
                WHERE owner_id = $1 AND calendar_id = $2 AND {_AFTER}
                ORDER BY modseq, href""",
            cal.owner_id, cal.id, *point.sql(),
        )]
    if tags_only:
        return Changes(sync_token(cal), [], removed, await list_tags(conn, cal, point))
    rows = await conn.fetch(
        f"""SELECT {_OBJ_COLS if with_data else _META_COLS} FROM calendar_objects
            WHERE owner_id = $1 AND calendar_id = $2 AND {_AFTER}
            ORDER BY modseq, href""",
        cal.owner_id, cal.id, *point.sql(),
    )
    return Changes(sync_token(cal), [_object(r) for r in rows], removed)


_TOMBSTONE_AS_OBJECT = """owner_id, calendar_id, href, NULL::text, NULL::text, NULL::text,
    NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::boolean, NULL::text, NULL::text,
    modseq, NULL::int, NULL::timestamptz"""


async def _limited_changes(
    conn: asyncpg.Connection, cal: Calendar, point: SyncPoint, limit: int, with_data: bool
) -> Changes:
    # Objects and tombstones in one statement, so the transactions running in
    # its snapshot (``running``) are those whose changes it could not see.
    rows = await conn.fetch(
        f"""WITH o AS (
                SELECT {_OBJ_COLS if with_data else _META_COLS}, false AS removed
                FROM calendar_objects
                WHERE owner_id = $1 AND calendar_id = $2 AND {_AFTER}
                ORDER BY modseq, href LIMIT $7),
            t AS (
                SELECT {_TOMBSTONE_AS_OBJECT}, true AS removed FROM calendar_tombstones
                WHERE owner_id = $1 AND calendar_id = $2 AND $8 AND {_AFTER}
                ORDER BY modseq, href LIMIT $7),
            running AS (SELECT array_agg(x) AS ids FROM calendar_running_ids() AS x)
            SELECT u.*, running.ids AS running
            FROM (SELECT * FROM o UNION ALL SELECT * FROM t) AS u, running
            ORDER BY u.modseq, u.href""",
        cal.owner_id, cal.id, *point.sql(), limit + 1, point != START,
    )
    def split(part: list[asyncpg.Record]) -> tuple[list[StoredObject], list[str]]:
        return ([_object(r) for r in part if not r["removed"]],
                [r["href"] for r in part if r["removed"]])

    if len(rows) <= limit:
        return Changes(sync_token(cal), *split(rows))
    kept = rows[:limit]
    last = kept[-1]
    top = int(last["modseq"])
    # Still to come after the page: what is numbered above its last change (a
    # page cut among the changes of transactions that were running repeats
    # those above it that the client had already: harmless), the rest of that
    # number's hrefs, and whatever the transactions running now below it commit.
    running = {int(x) for x in (last["running"] or ()) if int(x) <= top}
    running |= {x for x in point.running if x > top}
    rest = SyncPoint(top, tuple(sorted(running)), last["href"])
    mark = ".".join(str(x) for x in (rest.top, *rest.running))
    return Changes(_token(cal, mark, rest.after), *split(kept), truncated=True)


# --- unit schedules and feeds ------------------------------------------------------


async def get_publication(conn: asyncpg.Connection, unit_id: int) -> str | None:
    """The publication scope set for a unit's schedule, or None (the default applies)."""
    value = await conn.fetchval(
        "SELECT scope FROM unit_schedule_publication WHERE unit_id = $1", unit_id
    )
    return None if value is None else str(value)


async def set_publication(conn: asyncpg.Connection, unit_id: int, scope: str, actor: str) -> None:
    await conn.execute(
        """INSERT INTO unit_schedule_publication (unit_id, scope, set_by) VALUES ($1, $2, $3)
           ON CONFLICT (unit_id) DO UPDATE SET scope = EXCLUDED.scope, set_by = EXCLUDED.set_by,
             set_at = now()""",
        unit_id, scope, actor,
    )


async def active_feed(conn: asyncpg.Connection, cal: Calendar) -> str | None:
    value = await conn.fetchval(
        """SELECT token FROM calendar_feeds WHERE owner_id = $1 AND calendar_id = $2
             AND revoked_at IS NULL""",
        cal.owner_id, cal.id,
    )
    return None if value is None else str(value)


async def create_feed(conn: asyncpg.Connection, cal: Calendar, actor: str) -> str:
    """The active feed token of the calendar, made if there is none."""
    existing = await active_feed(conn, cal)
    if existing:
        return existing
    token = secrets.token_urlsafe(24)
    await conn.execute(
        """INSERT INTO calendar_feeds (token, owner_id, calendar_id, created_by)
           VALUES ($1, $2, $3, $4)""",
        token, cal.owner_id, cal.id, actor,
    )
    return token


async def revoke_feeds(conn: asyncpg.Connection, cal: Calendar) -> int:
    status = await conn.execute(
        """UPDATE calendar_feeds SET revoked_at = now()
           WHERE owner_id = $1 AND calendar_id = $2 AND revoked_at IS NULL""",
        cal.owner_id, cal.id,
    )
    return int(status.split()[-1])


async def calendar_for_feed(conn: asyncpg.Connection, token: str) -> Calendar:
    row = await conn.fetchrow(
        f"""SELECT {_C_COLS} FROM calendar_feeds f
           JOIN calendars c ON c.owner_id = f.owner_id AND c.id = f.calendar_id
           WHERE f.token = $1 AND f.revoked_at IS NULL""",
        token,
    )
    if row is None:
        raise NotFound("no such feed")
    return _calendar(row)
