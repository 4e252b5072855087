"""A PUT of a plain calendar object in one statement (no transaction around it).

Most PUTs store an object that is not a scheduling object (no ORGANIZER)
over nothing or over another such object, with no UID elsewhere in the
calendar. For those, ``put_plain`` does in ONE statement — its own
transaction, committed when it returns, so the ``201`` that follows is still
sent only after the commit (DESIGN §2) — what the general path does with
BEGIN, a lookup, the upsert and COMMIT: it reads what is at the href and who
holds the UID, checks the request's If-Match / If-None-Match against it, and
only then writes, with this transaction's id as the change number (RFC 6578
through snapshot tokens, migration 011: no lock on the calendar), drops a
tombstone and old instances of the href and upserts the object.

It writes nothing and says ``slow`` when the general path must decide: the
stored object is a scheduling object (its hooks must run, RFC 6638 §3.2),
another href holds the UID (RFC 4791 §5.3.2.1; Thunderbird's re-filed
invitation), or an object with indexed instances (a bounded recurring event)
replaces one at the href (the old instances are removed and the new written
in one statement only when there were none: the two would share keys).

The checks read the statement's snapshot, but the write is conditional on the
row still being the version they saw (compare-and-set on its change number,
re-evaluated by PostgreSQL on the newest, locked version): an UPDATE of exactly
that version, or an INSERT ... ON CONFLICT DO NOTHING where there was none.
When a concurrent writer got there first (another PUT, a DELETE, a scheduling
write), nothing is written — no tombstone or instance removed either — and the
verdict is ``slow``: the general path decides with fresh data (412, or the
hooks of what is now a scheduling object). Two PUTs with one If-Match or two
If-None-Match: * creates of one href can never both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from . import db
from .calendars import STAMP, Calendar, ObjectIndex, make_etag, span_bucket

__all__ = ["PRECONDITIONS", "PlainPut", "put_plain", "put_plain_by_name"]

PRECONDITIONS = ("any", "absent", "exists", "match")
"""``any``: no condition; ``absent``: If-None-Match: *; ``exists``: If-Match: *;
``match``: If-Match with one entity tag."""


@dataclass(frozen=True, slots=True)
class PlainPut:
    verdict: str  # written | precondition | slow
    etag: str | None = None
    created: bool = False
    schedule_tag: str | None = None


_PUT_TEMPLATE = """
WITH {calendar_cte}at_href AS (
    SELECT etag, modseq, strpos(upper(ics), 'ORGANIZER') > 0 AS scheduling
    FROM calendar_objects WHERE owner_id = $1 AND calendar_id = {cal} AND href = $3),
other_uid AS (
    SELECT 1 FROM calendar_objects
    WHERE owner_id = $1 AND calendar_id = {cal} AND uid = $4 AND href <> $3 AND NOT in_inbox
    LIMIT 1),
verdict AS (
    SELECT CASE
        {calendar_check}WHEN EXISTS (SELECT 1 FROM other_uid) OR EXISTS (SELECT 1 FROM at_href WHERE scheduling)
            OR (cardinality($17::timestamptz[]) > 0 AND EXISTS (SELECT 1 FROM at_href))
            THEN 'slow'
        WHEN $15 = 'absent' AND EXISTS (SELECT 1 FROM at_href) THEN 'precondition'
        WHEN $15 = 'exists' AND NOT EXISTS (SELECT 1 FROM at_href) THEN 'precondition'
        WHEN $15 = 'match' AND NOT EXISTS (SELECT 1 FROM at_href WHERE etag = $16)
            THEN 'precondition'
        ELSE 'written' END AS v),
seq AS (
    SELECT {stamp} AS sync_seq WHERE (SELECT v FROM verdict) = 'written'),
replaced AS (
    UPDATE calendar_objects SET
        uid = $4, etag = $5, ics = $6, component = $7, first_start = $8, last_end = $9,
        recurring = $10, span_bucket = $11, class = $12, modseq = seq.sync_seq, size = $13,
        instances_indexed = $19, floating_tz = $14, updated_at = now()
    FROM seq
    WHERE owner_id = $1 AND calendar_id = {cal} AND href = $3
      AND modseq = (SELECT modseq FROM at_href)
    RETURNING calendar_objects.etag, false AS inserted, calendar_objects.schedule_tag),
created AS (
    INSERT INTO calendar_objects (owner_id, calendar_id, href, uid, etag, ics, component,
        first_start, last_end, recurring, span_bucket, class, modseq, size,
        instances_indexed, floating_tz, in_inbox)
    SELECT $1, {cal}, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, seq.sync_seq, $13, $19,
           $14, false
    FROM seq WHERE NOT EXISTS (SELECT 1 FROM at_href)
    ON CONFLICT (owner_id, calendar_id, href) DO NOTHING
    RETURNING etag, true AS inserted, schedule_tag),
up AS (SELECT * FROM replaced UNION ALL SELECT * FROM created),
gone AS (
    DELETE FROM calendar_tombstones
    WHERE owner_id = $1 AND calendar_id = {cal} AND href = $3 AND EXISTS (SELECT 1 FROM up)),
old_instances AS (
    DELETE FROM calendar_instances
    WHERE owner_id = $1 AND calendar_id = {cal} AND href = $3 AND EXISTS (SELECT 1 FROM up)),
new_instances AS (
    INSERT INTO calendar_instances (owner_id, calendar_id, href, start_at, end_at)
    SELECT $1, {cal}, $3, s, e FROM unnest($17::timestamptz[], $18::timestamptz[]) AS t(s, e)
    WHERE EXISTS (SELECT 1 FROM created)
    ON CONFLICT DO NOTHING)
SELECT (SELECT v FROM verdict) AS verdict, up.etag, up.inserted, up.schedule_tag
FROM (SELECT 1) AS one LEFT JOIN up ON true"""

_PUT_PLAIN = _PUT_TEMPLATE.format(calendar_cte="", cal="$2", calendar_check="", stamp=STAMP)

# The same with the calendar looked up in the statement by its URL name (the
# owner's default calendar for "calendar", as resources.resolve maps it): one
# round trip fewer. A missing calendar, another kind of collection or a
# component the calendar does not take: the general path decides.
_PUT_PLAIN_BY_NAME = _PUT_TEMPLATE.format(calendar_cte="""cal AS (
    SELECT id FROM calendars
    WHERE owner_id = $1 AND owner_kind = 'account' AND kind = 'calendar'
      AND CASE WHEN $2::text = 'calendar' THEN is_default ELSE name = $2::text END
      AND ($7 = ANY(components) OR (cardinality(components) = 0 AND $7 IN ('VEVENT', 'VTODO')))
    ORDER BY is_default DESC LIMIT 1),
""", cal="(SELECT id FROM cal)", calendar_check="WHEN NOT EXISTS (SELECT 1 FROM cal) THEN 'slow'\n        ",
    stamp=STAMP)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def warm(conn: asyncpg.Connection) -> None:
    """Prepare the one-statement PUT on a new pooled connection and let
    PostgreSQL settle on its generic plan, which it does only after planning
    the first five executions one by one (about 1 ms each: the first PUTs after
    a start or on a new connection paid that). Run for account 0, which has no
    calendar: the statement decides ``slow`` and writes nothing."""
    for _ in range(6):
        await conn.fetchrow(_PUT_PLAIN_BY_NAME, 0, "calendar", "", "", "", "", "VEVENT",
                            _EPOCH, _EPOCH, False, 0, "PUBLIC", 0, None, "any", None,
                            [], [], False)


db.warm_new_connections(warm)


async def put_plain_by_name(conn: asyncpg.Connection, account_id: int, calendar: str,
                            href: str, index: ObjectIndex, ics: str | bytes,
                            precondition: str = "any", etag: str | None = None) -> PlainPut:
    """`put_plain` into the account's own calendar named ``calendar`` in its URL
    (``calendar``: its default calendar), found by the same statement."""
    return await _put(conn, _PUT_PLAIN_BY_NAME, account_id, calendar, href, index, ics,
                      precondition, etag)


async def put_plain(conn: asyncpg.Connection, cal: Calendar, href: str, index: ObjectIndex,
                    ics: str | bytes, precondition: str = "any",
                    etag: str | None = None) -> PlainPut:
    """Store a non-scheduling object at ``href`` in one statement, outside any
    transaction (the statement commits by itself), unless the general path
    must decide (``slow``) or the precondition fails (``precondition``).

    The stored object's Schedule-Tag, if it has one, stays (as on the
    general path). A new object's ``index.instances`` are written with it.
    """
    return await _put(conn, _PUT_PLAIN, cal.owner_id, cal.id, href, index, ics, precondition,
                      etag)


async def _put(conn: asyncpg.Connection, sql: str, owner_id: int, calendar: int | str,
               href: str, index: ObjectIndex, ics: str | bytes, precondition: str,
               etag: str | None) -> PlainPut:
    if precondition not in PRECONDITIONS:
        raise ValueError(precondition)
    if conn.is_in_transaction():
        raise RuntimeError("put_plain commits by itself: call it outside a transaction")
    text = ics.decode("utf-8") if isinstance(ics, bytes) else ics
    spans = index.instances or ()
    try:
        row = await conn.fetchrow(
            sql,
            owner_id, calendar, href, index.uid, make_etag(text), text, index.component,
            index.first_start, index.last_end, index.recurring, span_bucket(index), index.class_,
            len(text.encode("utf-8")), index.floating_tz, precondition, etag,
            [i[0] for i in spans], [i[1] for i in spans], index.instances is not None,
        )
    except asyncpg.ForeignKeyViolationError:  # the calendar went away: nothing written
        return PlainPut("slow")
    assert row is not None
    if row["verdict"] != "written":
        return PlainPut(row["verdict"])
    if row["etag"] is None:  # another writer got there first (compare-and-set)
        return PlainPut("slow")
    return PlainPut("written", row["etag"], bool(row["inserted"]), row["schedule_tag"])
