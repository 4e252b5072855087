"""Write and remove calendar objects from parsed iCalendar (for the app and scheduling).

`write_object` validates the text with `congvu.calendar.ical` and stores it
with its index facts through `congvu.store.calendars`; scheduling code uses
it to create or replace objects in another principal's calendar inside its
own transaction (no hooks run from here, so there is no recursion).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from icalendar import Calendar as ICalendar

from congvu.calendar import caltz, fastical, ical, icaltime
from congvu.calendar.caltz import Zone
from congvu.store import calendars as cal_repo
from congvu.store.calendars import Calendar, ObjectIndex, StoredObject

__all__ = ["index_of", "parse", "reindex_floating", "remove_object", "settle_floating",
           "write_object"]


def parse(body: bytes | str, supported: tuple[str, ...] = ("VEVENT", "VTODO"),
          zone: Zone | None = None) -> ical.CalendarObject:
    """Validate; raises ical.InvalidCalendarData (400 valid-calendar-data).

    Floating times are read in ``zone`` (the target calendar's,
    `caltz.calendar_zone`; the configured default when None).
    """
    zone = zone or caltz.default_zone()
    return ical.parse_calendar_object(body, supported=supported, floating_tz=zone.tz,
                                      floating_key=zone.key)


def parse_for(body: bytes | str, cal: Calendar,
              supported: tuple[str, ...] | None = None) -> ical.CalendarObject:
    """`parse` for storing in ``cal`` (its components, its zone)."""
    return parse(body, supported or tuple(cal.components) or ("VEVENT", "VTODO"),
                 caltz.calendar_zone(cal))


def fits(obj: ical.CalendarObject, cal: Calendar) -> bool:
    """Was ``obj`` indexed as ``cal`` needs (same zone, or nothing floats)?"""
    return not obj.floating or obj.floating_key == caltz.calendar_zone(cal).key


MAX_INDEXED_INSTANCES = 1000


def recurring_spans(obj: ical.CalendarObject) -> tuple[tuple[datetime, datetime], ...] | None:
    """Every instance of a bounded recurring VEVENT (RFC 4791 §9.9 spans), or None."""
    if not obj.is_recurring or obj.component != "VEVENT" or obj.last_end is None:
        return None
    tz = obj.floating_tz
    if isinstance(obj.series, fastical.Series):
        # a simple series read by fastical: dateutil directly, same spans
        quick = fastical.series_spans(obj.series, tz, MAX_INDEXED_INSTANCES)
        if quick is not False:
            return quick  # type: ignore[return-value]
    # the Calendar the full parser built from these very bytes, else parse again
    cal = obj.series if isinstance(obj.series, ICalendar) else ical.load_calendar(obj.data)
    spans = []
    for inst in icaltime.instances(cal, "VEVENT", None, None, tz):
        span = icaltime.event_span(inst, tz)
        if span is None:
            continue
        spans.append((span.start, span.end))
        if len(spans) > MAX_INDEXED_INSTANCES:
            return None
    return tuple(spans)


def index_of(obj: ical.CalendarObject) -> ObjectIndex:
    return ObjectIndex(
        uid=obj.uid,
        component=obj.component,
        first_start=obj.first_start if obj.first_start.tzinfo else obj.first_start.replace(tzinfo=UTC),
        last_end=obj.last_end,
        recurring=obj.is_recurring,
        class_=obj.class_,
        instances=recurring_spans(obj),
        floating_tz=obj.floating_key if obj.floating else None,
    )


async def write_object(
    conn: asyncpg.Connection, cal: Calendar, href: str, body: bytes | str,
    *, schedule_tag: str | None = None,
) -> tuple[StoredObject, bool]:
    """Parse ``body`` and create or replace the object at ``href``: (object, created)."""
    parsed = parse_for(body, cal)
    stored = await cal_repo.put_object(conn, cal, href, index_of(parsed), parsed.data,
                                       schedule_tag)
    await settle_floating(conn, cal, parsed)
    return stored


async def settle_floating(conn: asyncpg.Connection, cal: Calendar,
                          parsed: ical.CalendarObject) -> None:
    """After a write that indexed floating times: if the calendar's zone changed
    since ``cal`` was read (a PROPPATCH of calendar-timezone committed in
    between; the write's change number now holds the calendar row, so the read
    is current), index the calendar's floating objects in the new zone."""
    if not parsed.floating:
        return
    fresh = await cal_repo.get_calendar_by_id(conn, cal.owner_id, cal.id)
    if caltz.calendar_zone(fresh).key != parsed.floating_key:
        await reindex_floating(conn, fresh)


async def remove_object(conn: asyncpg.Connection, cal: Calendar, href: str) -> StoredObject:
    return await cal_repo.delete_object(conn, cal, href)


async def reindex_floating(conn: asyncpg.Connection, cal: Calendar, batch: int = 500) -> int:
    """Index again the objects of ``cal`` whose floating times were read in
    another zone than the calendar's now (after a calendar-timezone change,
    a new configured default, or rows from before migration 009). The
    bodies, ETags and sync state do not change. Returns how many."""
    zone = caltz.calendar_zone(cal)
    done = 0
    while True:
        rows = await cal_repo.stale_floating(conn, cal, zone.key, batch)
        for href, etag, ics in rows:
            try:
                index: ObjectIndex | None = index_of(parse(ics, ical.OBJECT_TYPES, zone))
            except ical.InvalidCalendarData:
                index = None  # stored before a stricter parser: a candidate for every range
            await cal_repo.reindex_object(conn, cal, href, etag, index)
        done += len(rows)
        if len(rows) < batch:
            return done


async def reindex_stale(db: Any) -> int:
    """Every calendar whose floating times were indexed in another zone than its
    own now (a changed configured default, rows from before migration 009),
    one calendar per transaction. Run once per process (`congvu.calendar.app`)."""
    done = 0
    seen: set[tuple[int, int]] = set()
    while True:
        async with db.transaction() as conn:
            cals = await cal_repo.calendars_with_stale_floating(
                conn, caltz.default_zone().key, limit=len(seen) + 1)
            todo = [c for c in cals if (c.owner_id, c.id) not in seen]
            if not todo:
                return done  # (a calendar seen twice would be a key mismatch: stop)
            seen.add((todo[0].owner_id, todo[0].id))
            # The row lock orders this with PROPPATCH and writers of the calendar.
            cal = await cal_repo.lock_calendar(conn, todo[0])
            done += await reindex_floating(conn, cal)


def utcnow() -> datetime:
    return datetime.now(UTC)
