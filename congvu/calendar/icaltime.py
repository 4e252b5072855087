"""Time arithmetic shared by the CalDAV core: UTC conversion, component spans
and the RFC 4791 §9.9 time-range overlap rules, and recurrence instances.

Pure functions over `icalendar` components; no I/O. `ical`, `filters` and
`freebusy` build on these so that the time-range a query uses, the instances
`expand` returns and the busy time free/busy reports all agree.

Floating times (no TZID, no ``Z``) and TZIDs that resolve to no zone are
read in ``floating_tz`` (UTC unless the caller knows the calendar's
``calendar-timezone``, RFC 4791 §9.9 last paragraph). DATE values start at
midnight in that zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import recurring_ical_events
from icalendar import Component

__all__ = [
    "UNBOUNDED_START",
    "TimeSpan",
    "component_overlaps",
    "event_span",
    "has_floating",
    "instances",
    "is_recurring_set",
    "prop_dt",
    "to_utc",
    "todo_envelope",
    "todo_overlaps",
]

# Lower bound used for objects with no start at all (a VTODO without dates
# matches every time-range, RFC 4791 §9.9). PostgreSQL timestamptz holds it.
UNBOUNDED_START = datetime(1, 1, 1, tzinfo=UTC)

ONE_DAY = timedelta(days=1)
# Widening of the window handed to recurring-ical-events so that its own
# overlap conventions (floating times, all-day days, zero-length events) never
# drop an instance; the exact §9.9 test runs afterwards on every instance.
_SLACK = timedelta(days=2)
# A series is expanded at most this far; beyond it queries stay correct but
# `last_end` falls back to "unbounded".
MAX_INSTANCES = 10_000


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """Start and end of one instance in UTC; ``end == start`` for instants."""

    start: datetime
    end: datetime


def to_utc(value: date | datetime, floating_tz: tzinfo = UTC) -> datetime:
    """Convert a DATE or DATE-TIME value to an aware UTC datetime."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=floating_tz)
    return value.astimezone(UTC)


def _floating_value(value: object) -> bool:
    if isinstance(value, tuple):  # a PERIOD: its start decides
        value = value[0] if value else None
    if isinstance(value, datetime):
        return value.tzinfo is None or value.tzinfo.utcoffset(value) is None
    return isinstance(value, date)


def has_floating(comps: list[Component]) -> bool:
    """Does any date or date-time that places an instance float (no zone)?

    RFC 4791 §9.9: such values (and DATE values) are read in the calendar's
    zone, so the object's index depends on that zone.
    """
    for comp in comps:
        for name in ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID"):
            value = prop_dt(comp, name)
            if value is not None and _floating_value(value):
                return True
        for name in ("RDATE", "EXDATE"):
            props = comp.get(name)
            for prop in props if isinstance(props, list) else ([props] if props else []):
                if any(_floating_value(getattr(v, "dt", None)) for v in getattr(prop, "dts", [])):
                    return True
    return False


def prop_dt(comp: Component, name: str) -> date | datetime | None:
    """The date/date-time value of property ``name``, or None if absent/broken."""
    prop = comp.get(name)
    if prop is None:
        return None
    if isinstance(prop, list):  # repeated property: take the first
        prop = prop[0]
    try:
        value = getattr(prop, "dt", None)
    except Exception:  # icalendar 7 vBroken raises BrokenCalendarProperty
        return None
    if isinstance(value, (date, datetime)):
        return value
    return None


def _duration(comp: Component) -> timedelta | None:
    prop = comp.get("DURATION")
    try:
        value = getattr(prop, "dt", None)
    except Exception:  # broken value: treat as absent
        return None
    return value if isinstance(value, timedelta) else None


def event_span(comp: Component, floating_tz: tzinfo = UTC) -> TimeSpan | None:
    """The span of a VEVENT/VJOURNAL instance per RFC 4791 §9.9, or None.

    VEVENT: DTEND if present; else DTSTART+DURATION; else zero length for a
    DATE-TIME DTSTART and one day for a DATE DTSTART. VJOURNAL: an instant
    at DTSTART, or one day for a DATE. A DTEND before DTSTART (seen in the
    wild) is read as zero length.
    """
    dtstart = prop_dt(comp, "DTSTART")
    if dtstart is None:
        return None
    start = to_utc(dtstart, floating_tz)
    all_day = not isinstance(dtstart, datetime)
    end: datetime
    dtend = prop_dt(comp, "DTEND") if comp.name == "VEVENT" else None
    duration = _duration(comp) if comp.name == "VEVENT" else None
    if dtend is not None:
        end = to_utc(dtend, floating_tz)
    elif duration is not None:
        end = start + duration
    elif all_day:
        end = start + ONE_DAY
    else:
        end = start
    return TimeSpan(start, max(start, end))


def _overlaps_span(span: TimeSpan, start: datetime | None, end: datetime | None) -> bool:
    # RFC 4791 §9.9 VEVENT table: zero-length instances use
    # (start <= DTSTART AND end > DTSTART); others (start < END AND end > START).
    if span.end == span.start:
        return (start is None or start <= span.start) and (end is None or end > span.start)
    return (start is None or start < span.end) and (end is None or end > span.start)


def todo_overlaps(
    comp: Component, start: datetime | None, end: datetime | None, floating_tz: tzinfo = UTC
) -> bool:
    """RFC 4791 §9.9 VTODO table, row by row. ``None`` bounds are open."""
    lo = start or UNBOUNDED_START
    hi = end or datetime.max.replace(tzinfo=UTC)

    def get(name: str) -> datetime | None:
        value = prop_dt(comp, name)
        return None if value is None else to_utc(value, floating_tz)

    dtstart, due = get("DTSTART"), get("DUE")
    completed, created = get("COMPLETED"), get("CREATED")
    duration = _duration(comp)
    if dtstart is not None and duration is not None:
        return lo <= dtstart + duration and (hi > dtstart or hi >= dtstart + duration)
    if dtstart is not None and due is not None:
        return (lo < due or lo <= dtstart) and (hi > dtstart or hi >= due)
    if dtstart is not None:
        return lo <= dtstart and hi > dtstart
    if due is not None:
        return lo < due and hi >= due
    if completed is not None and created is not None:
        return (lo <= created or lo <= completed) and (hi >= created or hi >= completed)
    if completed is not None:
        return lo <= completed and hi >= completed
    if created is not None:
        return hi > created
    return True


def todo_envelope(comp: Component, floating_tz: tzinfo = UTC) -> tuple[datetime, datetime | None]:
    """Smallest [lo, hi] outside which the §9.9 VTODO test can never hold."""
    values = [
        to_utc(v, floating_tz)
        for v in (prop_dt(comp, n) for n in ("DTSTART", "DUE", "COMPLETED", "CREATED"))
        if v is not None
    ]
    dtstart, duration = prop_dt(comp, "DTSTART"), _duration(comp)
    if dtstart is not None and duration is not None:
        values.append(to_utc(dtstart, floating_tz) + duration)
    if not values:
        return UNBOUNDED_START, None
    only_created = all(prop_dt(comp, n) is None for n in ("DTSTART", "DUE", "COMPLETED"))
    return min(values), (None if only_created else max(values))


def component_overlaps(
    comp: Component, start: datetime | None, end: datetime | None, floating_tz: tzinfo = UTC
) -> bool:
    """Does this (single-instance) component overlap the range, RFC 4791 §9.9?"""
    if comp.name == "VTODO":
        return todo_overlaps(comp, start, end, floating_tz)
    if comp.name in ("VEVENT", "VJOURNAL"):
        span = event_span(comp, floating_tz)
        return span is not None and _overlaps_span(span, start, end)
    if comp.name == "VFREEBUSY":
        return _freebusy_overlaps(comp, start, end, floating_tz)
    if comp.name == "VALARM":
        return False  # alarms are tested through their parent, see filters
    return False


def _freebusy_overlaps(
    comp: Component, start: datetime | None, end: datetime | None, floating_tz: tzinfo
) -> bool:
    # RFC 4791 §9.9 VFREEBUSY: FREEBUSY periods if any, else DTSTART/DTEND.
    periods: list[TimeSpan] = []
    props = comp.get("FREEBUSY")
    for prop in props if isinstance(props, list) else ([props] if props is not None else []):
        for value in getattr(prop, "dts", None) or [prop]:
            period = getattr(value, "dt", None)
            if isinstance(period, tuple) and len(period) == 2:
                p_start = to_utc(period[0], floating_tz)
                p_end = period[1]
                p_end = (p_start + p_end if isinstance(p_end, timedelta)
                         else to_utc(p_end, floating_tz))
                periods.append(TimeSpan(p_start, p_end))
    if not periods:
        dtstart, dtend = prop_dt(comp, "DTSTART"), prop_dt(comp, "DTEND")
        if dtstart is None or dtend is None:
            return False
        periods.append(TimeSpan(to_utc(dtstart, floating_tz), to_utc(dtend, floating_tz)))
    lo = start or UNBOUNDED_START
    hi = end or datetime.max.replace(tzinfo=UTC)
    return any(lo < p.end and hi > p.start for p in periods)


def is_recurring_set(components: list[Component]) -> bool:
    """True if any component carries RRULE/RDATE (a series to expand)."""
    return any("RRULE" in c or "RDATE" in c for c in components)


def instances(
    calendar: Component,
    comp_type: str,
    start: datetime | None,
    end: datetime | None,
    floating_tz: tzinfo = UTC,
) -> Iterator[Component]:
    """Yield every instance of ``comp_type`` in ``calendar`` overlapping the range.

    Non-recurring components are yielded as they are; recurring ones are
    expanded with recurring-ical-events (EXDATE removed, RECURRENCE-ID
    overrides substituted) over a slightly widened window, then each
    instance is checked exactly against §9.9. Instances carry RECURRENCE-ID
    and no RRULE/RDATE/EXDATE.
    """
    comps = [c for c in calendar.subcomponents if c.name == comp_type]
    if not is_recurring_set(comps):
        for comp in comps:
            if component_overlaps(comp, start, end, floating_tz):
                yield comp
        return
    lo = (start or datetime(1900, 1, 1, tzinfo=UTC)) - _SLACK
    query = recurring_ical_events.of(calendar, components=[comp_type], skip_bad_series=True)
    # Open-ended range (iPhone sends only a start): walk lazily and stop
    # after MAX_INSTANCES rather than expanding an endless series.
    iterator: Iterator[Any] = (
        iter(query.after(lo)) if end is None else iter(query.between(lo, end + _SLACK))
    )
    for count, inst in enumerate(iterator):
        if count >= MAX_INSTANCES:
            return
        if component_overlaps(inst, start, end, floating_tz):
            yield inst
