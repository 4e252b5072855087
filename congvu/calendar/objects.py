"""Write and remove calendar objects from parsed iCalendar (for the app and scheduling).

`write_object` validates the text with `congvu.calendar.ical` and stores it
with its index facts through `congvu.store.calendars`; scheduling code uses
it to create or replace objects in another principal's calendar inside its
own transaction (no hooks run from here, so there is no recursion).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from congvu.calendar import ical, icaltime
from congvu.store import calendars as cal_repo
from congvu.store.calendars import Calendar, ObjectIndex, StoredObject

__all__ = ["index_of", "parse", "remove_object", "write_object"]


def parse(body: bytes | str, supported: tuple[str, ...] = ("VEVENT", "VTODO")) -> ical.CalendarObject:
    """Validate; raises ical.InvalidCalendarData (400 valid-calendar-data)."""
    return ical.parse_calendar_object(body, supported=supported)


MAX_INDEXED_INSTANCES = 1000


def recurring_spans(obj: ical.CalendarObject) -> tuple[tuple[datetime, datetime], ...] | None:
    """Every instance of a bounded recurring VEVENT (RFC 4791 §9.9 spans), or None."""
    if not obj.is_recurring or obj.component != "VEVENT" or obj.last_end is None:
        return None
    cal = ical.load_calendar(obj.data)
    spans = []
    for inst in icaltime.instances(cal, "VEVENT", None, None, UTC):
        span = icaltime.event_span(inst, UTC)
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
    )


async def write_object(
    conn: asyncpg.Connection, cal: Calendar, href: str, body: bytes | str,
    *, schedule_tag: str | None = None,
) -> tuple[StoredObject, bool]:
    """Parse ``body`` and create or replace the object at ``href``: (object, created)."""
    parsed = parse(body, tuple(cal.components) or ("VEVENT", "VTODO"))
    return await cal_repo.put_object(conn, cal, href, index_of(parsed), parsed.data,
                                     schedule_tag)


async def remove_object(conn: asyncpg.Connection, cal: Calendar, href: str) -> StoredObject:
    return await cal_repo.delete_object(conn, cal, href)


def utcnow() -> datetime:
    return datetime.now(UTC)
