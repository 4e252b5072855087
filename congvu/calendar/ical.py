"""Lenient iCalendar handling for stored calendar object resources.

`parse_calendar_object` turns a PUT body into a validated `CalendarObject`:
the facts the store indexes (UID, component type, first start, last end,
CLASS, organizer and attendees) and the normalized bytes to keep. It accepts
what real clients send (RFC 4791 §4.1 rules, read generously) and raises
`InvalidCalendarData` — which maps to ``400`` with a ``valid-calendar-data``
precondition (RFC 4791 §5.3.2.1) — only for bodies nothing can make sense of.

Also here: `expand` and `limit_recurrence_set` for the ``calendar-data``
element of a REPORT (RFC 4791 §9.6.5, §9.6.6) and `redact_private` for
CLASS:PRIVATE/CONFIDENTIAL objects seen by readers without write rights.
Free/busy lives in `congvu.calendar.freebusy` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from dateutil.rrule import rrulestr
from icalendar import Calendar, Component, Event, Todo

from congvu.calendar.fastical import parse_simple
from congvu.calendar.freebusy import busy_periods, merge_periods, vfreebusy_response
from congvu.calendar.icaltime import (
    MAX_INSTANCES,
    UNBOUNDED_START,
    TimeSpan,
    component_overlaps,
    event_span,
    has_floating,
    instances,
    prop_dt,
    to_utc,
    todo_envelope,
)

__all__ = [
    "PRODID",
    "Attendee",
    "CalendarObject",
    "InvalidCalendarData",
    "UnsupportedComponent",
    "busy_periods",
    "expand",
    "limit_recurrence_set",
    "load_calendar",
    "merge_periods",
    "parse_calendar_object",
    "redact_private",
    "vfreebusy_response",
]

PRODID = "-//Congvu//CalDAV Server//VI"
CALDAV_NS = "urn:ietf:params:xml:ns:caldav"
OBJECT_TYPES = ("VEVENT", "VTODO", "VJOURNAL")
# RFC 5545 §3.8.1.3: unknown CLASS values are treated like PRIVATE.
_CLASSES = ("PUBLIC", "PRIVATE", "CONFIDENTIAL")
# Properties whose parse failure makes the object unusable.
_CRITICAL = {"UID", "DTSTART", "DTEND", "DUE", "DURATION", "RRULE", "RECURRENCE-ID"}
_ONCE = ("DTSTART", "DTEND", "DUE", "DURATION", "RECURRENCE-ID")


class InvalidCalendarData(ValueError):
    """The body is not usable iCalendar; answer 400 with ``precondition``."""

    precondition = f"{{{CALDAV_NS}}}valid-calendar-data"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedComponent(InvalidCalendarData):
    """Component type not stored here (RFC 4791 §5.3.2.1): 403."""

    precondition = f"{{{CALDAV_NS}}}supported-calendar-component"
    status = 403


@dataclass(frozen=True, slots=True)
class Attendee:
    """An ATTENDEE (or ORGANIZER) address with the parameters scheduling needs.

    ``address`` is the property value exactly as the client wrote it (Thunderbird
    compares case-sensitively, so the case is kept); ``email`` strips ``mailto:``.
    """

    address: str
    cn: str | None = None
    partstat: str | None = None
    role: str | None = None
    schedule_agent: str | None = None
    rsvp: bool = False
    sent_by: str | None = None

    @property
    def email(self) -> str:
        a = self.address
        return a[7:] if a[:7].lower() == "mailto:" else a


@dataclass(frozen=True, slots=True)
class CalendarObject:
    """One validated calendar object resource and the facts the store indexes.

    ``first_start``/``last_end`` bound every instance in UTC (a conservative
    envelope: an EXDATE on the first instance does not move it). ``last_end``
    is None for an unbounded series or a VTODO without an end; ``first_start``
    is `UNBOUNDED_START` for a VTODO without any date.
    """

    uid: str
    component: str
    is_recurring: bool
    first_start: datetime
    last_end: datetime | None
    class_: str
    organizer: Attendee | None
    attendees: tuple[Attendee, ...]
    sequence: int
    summary: str | None
    dtstamp: datetime
    data: bytes
    # Some instance-placing value floats (RFC 4791 §9.9): the index above was
    # computed in ``floating_tz`` and depends on the calendar's zone.
    floating: bool = False
    floating_tz: tzinfo = UTC
    floating_key: str = "UTC"  # names floating_tz (congvu.calendar.caltz.Zone.key)
    # What `objects.recurring_spans` expands without parsing ``data`` again
    # (a `fastical.Series`, or the parsed Calendar when ``data`` is exactly
    # what was parsed); not part of the object's value.
    series: object = field(default=None, compare=False, repr=False)


def _param(prop: object, name: str) -> str | None:
    params = getattr(prop, "params", None)
    if not params:
        return None
    value = params.get(name)
    return None if value is None else str(value)


def attendee_of(prop: object, default_partstat: str | None = "NEEDS-ACTION") -> Attendee:
    """Build an `Attendee` from an ATTENDEE (or ORGANIZER, no default PARTSTAT)."""
    partstat = _param(prop, "PARTSTAT")
    return Attendee(
        address=str(prop),
        cn=_param(prop, "CN"),
        # RFC 5545 §3.2.12: PARTSTAT defaults to NEEDS-ACTION.
        partstat=partstat.upper() if partstat else default_partstat,
        role=_param(prop, "ROLE"),
        schedule_agent=(_param(prop, "SCHEDULE-AGENT") or "").upper() or None,
        rsvp=(_param(prop, "RSVP") or "").upper() == "TRUE",
        sent_by=_param(prop, "SENT-BY"),
    )


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def load_calendar(data: bytes | str | Calendar) -> Calendar:
    """Parse one VCALENDAR or raise `InvalidCalendarData`."""
    if isinstance(data, Calendar):
        return data
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Old clients send Latin-1; RFC 5545 §3.1.4 says UTF-8, be lenient.
            text = data.decode("latin-1")
    else:
        text = data
    text = text.lstrip("\ufeff")
    if "BEGIN:VCALENDAR" not in text.upper():
        raise InvalidCalendarData("not an iCalendar object (no BEGIN:VCALENDAR)")
    try:
        cal = Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        # (AttributeError: icalendar 7 on a VTIMEZONE with two TZIDs)
        raise InvalidCalendarData(f"cannot parse iCalendar: {exc}") from exc
    if not isinstance(cal, Calendar) or cal.name != "VCALENDAR":
        raise InvalidCalendarData("top-level component is not VCALENDAR")
    return cal


def _check_component(comp: Component) -> None:
    broken = {name for name, _ in comp.errors if name in _CRITICAL}
    for name in ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID"):
        prop = comp.get(name)
        if prop is not None and prop_dt(comp, name) is None:
            broken.add(name)
    if broken:
        raise InvalidCalendarData(f"{comp.name}: unparsable {', '.join(sorted(broken))}")
    # RFC 5545 §3.6.1/§3.6.2: each at most once (recurring-ical-events cannot
    # expand a series with two of them: it was a 500 at indexing time).
    repeated = sorted(n for n in _ONCE if isinstance(comp.get(n), list))
    if repeated:
        raise InvalidCalendarData(f"{comp.name}: repeated {', '.join(repeated)}")
    if "UID" not in comp or not str(comp["UID"]).strip():
        raise InvalidCalendarData(f"{comp.name} without UID")
    # RFC 5545 §3.6.1 / §3.6.2: DTEND (DUE) and DURATION are mutually exclusive.
    if "DURATION" in comp and ("DTEND" in comp or "DUE" in comp):
        raise InvalidCalendarData(f"{comp.name} has both DURATION and DTEND/DUE")
    # RFC 5545 §3.6.1: DTSTART is required when there is no METHOD.
    if comp.name == "VEVENT" and "DTSTART" not in comp:
        raise InvalidCalendarData("VEVENT without DTSTART")
    if ("RRULE" in comp or "RDATE" in comp) and "DTSTART" not in comp:
        raise InvalidCalendarData(f"recurring {comp.name} without DTSTART")


def parse_calendar_object(
    data: bytes | str,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    floating_tz: tzinfo = UTC,
    floating_key: str = "UTC",
    supported: tuple[str, ...] = OBJECT_TYPES,
) -> CalendarObject:
    """Validate a calendar object resource body and extract its index facts.

    RFC 4791 §4.1: one component type (besides VTIMEZONE), one UID, no
    METHOD. Leniencies: a missing DTSTAMP is added (``now()``), METHOD is
    dropped (clients import invitations as-is), a missing VERSION/PRODID is
    added, TZIDs with no known zone and floating times are read in
    ``floating_tz``, non-UTC RRULE UNTIL is read in DTSTART's zone.
    """
    fast = parse_simple(data, floating_tz=floating_tz, floating_key=floating_key,
                        supported=supported)
    if fast is not None:
        return fast
    cal = load_calendar(data)
    comps = [c for c in cal.subcomponents if c.name != "VTIMEZONE"]
    if not comps:
        raise InvalidCalendarData("no calendar component")
    as_sent = _storable_as_sent(data, cal)
    types = {str(c.name) for c in comps}
    if len(types) != 1:
        raise InvalidCalendarData(f"several component types: {', '.join(sorted(types))}")
    ctype = types.pop()
    if ctype not in supported:
        raise UnsupportedComponent(f"component {ctype} not supported here")
    for comp in comps:
        _check_component(comp)
    uids = {str(c["UID"]) for c in comps}
    if len(uids) != 1:
        raise InvalidCalendarData("components with different UIDs")
    masters = [c for c in comps if "RECURRENCE-ID" not in c]
    if len(masters) > 1:
        raise InvalidCalendarData("several components without RECURRENCE-ID")
    rids = [to_utc(prop_dt(c, "RECURRENCE-ID"), floating_tz) for c in comps  # type: ignore[arg-type]
            if "RECURRENCE-ID" in c]
    if len(rids) != len(set(rids)):
        raise InvalidCalendarData("duplicate RECURRENCE-ID")

    # Normalize (RFC 4791 §4.1: stored objects carry no METHOD).
    if "METHOD" in cal:
        cal.pop("METHOD", None)
        as_sent = None
    if "VERSION" not in cal:
        cal.add("VERSION", "2.0")
        as_sent = None
    if "PRODID" not in cal:
        cal.add("PRODID", PRODID)
        as_sent = None
    stamp = now().astimezone(UTC).replace(microsecond=0)
    for comp in comps:
        if prop_dt(comp, "DTSTAMP") is None:
            comp.pop("DTSTAMP", None)
            comp.add("DTSTAMP", stamp)
            as_sent = None

    main = masters[0] if masters else comps[0]
    first, last = _envelope(cal, ctype, comps, floating_tz)
    class_ = str(main.get("CLASS", "PUBLIC")).upper()
    organizer = main.get("ORGANIZER")
    try:
        sequence = int(str(main.get("SEQUENCE", 0)))
    except ValueError:
        sequence = 0
    summary = main.get("SUMMARY")
    dtstamp = prop_dt(main, "DTSTAMP")
    return CalendarObject(
        uid=uids.pop(),
        component=ctype,
        is_recurring=bool(rids) or any("RRULE" in c or "RDATE" in c for c in comps),
        first_start=first,
        last_end=last,
        class_=class_ if class_ in _CLASSES else "PRIVATE",
        organizer=None if organizer is None else attendee_of(_as_list(organizer)[0], None),
        attendees=tuple(attendee_of(a) for a in _as_list(main.get("ATTENDEE"))),
        sequence=sequence,
        summary=None if summary is None else str(summary),
        dtstamp=to_utc(dtstamp) if dtstamp is not None else stamp,
        data=as_sent if as_sent is not None else cal.to_ical(),
        floating=has_floating(comps),
        floating_tz=floating_tz,
        floating_key=floating_key,
        series=cal if as_sent is not None else None,
    )


def _storable_as_sent(data: bytes | str, cal: Calendar) -> bytes | None:
    """The client's own bytes when they need no normalisation, else None.

    Serialising the parsed object again costs as much as parsing it; a body
    that is UTF-8 without a byte-order mark, has CRLF line ends throughout
    (RFC 5545 §3.1) and parsed without a single property error is stored as
    sent (the caller re-serialises anyway when it adds or drops anything).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if raw.startswith(b"\xef\xbb\xbf") or not raw.endswith(b"\r\n"):
        return None
    if raw.count(b"\n") != raw.count(b"\r\n") or raw.count(b"\r") != raw.count(b"\r\n"):
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(comp.errors for comp in cal.walk()):
        return None
    return raw


def _single_envelope(comp: Component, floating_tz: tzinfo) -> tuple[datetime, datetime | None]:
    if comp.name == "VTODO":
        return todo_envelope(comp, floating_tz)
    span = event_span(comp, floating_tz)
    if span is None:  # VJOURNAL without DTSTART never matches a time-range
        return UNBOUNDED_START, None
    return span.start, span.end


def _envelope(
    cal: Calendar, ctype: str, comps: list[Component], floating_tz: tzinfo
) -> tuple[datetime, datetime | None]:
    """[first_start, last_end] over every instance, for the store's index."""
    lows: list[datetime] = []
    highs: list[datetime | None] = []
    for comp in comps:
        lo, hi = _single_envelope(comp, floating_tz)
        lows.append(lo)
        highs.append(hi)
        if "RRULE" in comp or "RDATE" in comp:
            highs.append(_series_last_end(cal, ctype, comp, floating_tz, lo, hi))
    if any(h is None for h in highs):
        return min(lows), None
    return min(lows), max(h for h in highs if h is not None)


def _series_last_end(
    cal: Calendar, ctype: str, master: Component, floating_tz: tzinfo,
    lo: datetime, hi: datetime | None,
) -> datetime | None:
    if hi is None:
        return None
    length = hi - lo
    dtstart = prop_dt(master, "DTSTART")
    rdates = [to_utc(p, floating_tz) for p in _rdate_values(master)]
    rule = master.get("RRULE")
    if rule is None:
        return max([hi, *(r + length for r in rdates)])
    if "COUNT" in rule:
        try:
            count = int(rule["COUNT"][0])
        except (ValueError, IndexError):
            return None
        if count > MAX_INSTANCES:
            return None
        last_start = _last_counted_start(master, floating_tz)
        if last_start is None:  # fall back to a full expansion
            ends = [i.end for i in _all_spans(cal, ctype, floating_tz)]
            return max([hi, *ends, *(r + length for r in rdates)])
        return max([hi, last_start + length, *(r + length for r in rdates)])
    if "UNTIL" in rule:
        until = rule["UNTIL"][0]
        if isinstance(until, datetime):
            if until.tzinfo is None and isinstance(dtstart, datetime) and dtstart.tzinfo:
                # Evolution writes a local UNTIL (RFC 5545 §3.3.10 wants UTC):
                # read it in DTSTART's zone.
                until = until.replace(tzinfo=dtstart.tzinfo)
            last_start = to_utc(until, floating_tz)
        else:
            last_start = to_utc(until, floating_tz) + timedelta(days=1)
        return max([hi, last_start + length, *(r + length for r in rdates)])
    return None  # no COUNT, no UNTIL: unbounded (RFC 5545 §3.3.10)


def _last_counted_start(master: Component, floating_tz: tzinfo) -> datetime | None:
    """Start of the last instance of a COUNT rule, via dateutil (fast path).

    EXDATEs only remove instances, so ignoring them keeps the bound safe.
    """
    dtstart = prop_dt(master, "DTSTART")
    if dtstart is None:
        return None
    start = dtstart if isinstance(dtstart, datetime) else datetime(
        dtstart.year, dtstart.month, dtstart.day)
    try:
        raw = master["RRULE"].to_ical()
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        rule = rrulestr(text, dtstart=start)
        last = None
        for last in rule:  # noqa: B007 - bounded by COUNT <= MAX_INSTANCES
            pass
    except (ValueError, TypeError):
        return None
    return None if last is None else to_utc(last, floating_tz)


def _rdate_values(comp: Component) -> list[date | datetime]:
    out: list[date | datetime] = []
    for prop in _as_list(comp.get("RDATE")):
        for value in getattr(prop, "dts", []):
            dt = value.dt
            if isinstance(dt, tuple):
                dt = dt[0]
            if isinstance(dt, (date, datetime)):
                out.append(dt)
    return out


def _all_spans(cal: Calendar, ctype: str, floating_tz: tzinfo) -> list[TimeSpan]:
    spans: list[TimeSpan] = []
    for inst in instances(cal, ctype, None, None, floating_tz):
        lo, hi = _single_envelope(inst, floating_tz)
        spans.append(TimeSpan(lo, hi or lo))
    return spans


# --- calendar-data variants (RFC 4791 §9.6) ---------------------------------


def _utc_value(value: date | datetime, floating_tz: tzinfo) -> date | datetime:
    return value if not isinstance(value, datetime) else to_utc(value, floating_tz)


_TIME_PROPS = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "COMPLETED")


def _to_utc_component(comp: Component, floating_tz: tzinfo) -> Component:
    """Copy of ``comp`` with date-times in UTC and no recurrence rule."""
    out = comp.copy()
    out.subcomponents = list(comp.subcomponents)
    for name in _TIME_PROPS:
        value = prop_dt(comp, name)
        if value is not None:
            out.pop(name)
            out.add(name, _utc_value(value, floating_tz))
    for name in ("RRULE", "RDATE", "EXDATE", "EXRULE"):
        out.pop(name, None)
    return out


def expand(
    data: bytes | str | Calendar, start: datetime, end: datetime, floating_tz: tzinfo = UTC
) -> bytes:
    """RFC 4791 §9.6.5 ``expand``: every instance overlapping [start, end).

    Instances are separate components with RECURRENCE-ID, date-times in UTC
    (DATE values stay DATE), no RRULE/RDATE/EXDATE and no VTIMEZONE.
    Non-recurring components overlapping the range come back in UTC too.
    """
    cal = load_calendar(data)
    out = _shell(cal)
    types = {str(c.name) for c in cal.subcomponents if c.name != "VTIMEZONE"}
    for ctype in sorted(types):
        recurring = any("RRULE" in c or "RDATE" in c for c in cal.subcomponents
                        if c.name == ctype)
        for inst in instances(cal, ctype, start, end, floating_tz):
            comp = _to_utc_component(inst, floating_tz)
            dtstart = prop_dt(comp, "DTSTART")
            if recurring and "RECURRENCE-ID" not in comp and dtstart is not None:
                comp.add("RECURRENCE-ID", dtstart)
            out.add_component(comp)
    return out.to_ical()


def limit_recurrence_set(
    data: bytes | str | Calendar, start: datetime, end: datetime, floating_tz: tzinfo = UTC
) -> bytes:
    """RFC 4791 §9.6.6: keep the master and only overrides touching the range.

    An override is kept when either its own time or the original instance it
    replaces (its RECURRENCE-ID, with the master's duration) overlaps.
    """
    cal = load_calendar(data)
    out = _shell(cal)
    masters = {c.name: c for c in cal.subcomponents if "RECURRENCE-ID" not in c}
    for comp in cal.subcomponents:
        if comp.name == "VTIMEZONE" or "RECURRENCE-ID" not in comp:
            out.add_component(comp)
            continue
        if component_overlaps(comp, start, end, floating_tz):
            out.add_component(comp)
            continue
        master = masters.get(comp.name)
        original = _original_instance(master, comp) if master is not None else None
        if original is not None and component_overlaps(original, start, end, floating_tz):
            out.add_component(comp)
    return out.to_ical()


def _original_instance(master: Component, override: Component) -> Component | None:
    rid = prop_dt(override, "RECURRENCE-ID")
    dtstart = prop_dt(master, "DTSTART")
    if rid is None or dtstart is None:
        return None
    inst: Component = Event() if master.name == "VEVENT" else Todo()
    inst.add("DTSTART", rid)
    span = event_span(master) if master.name == "VEVENT" else None
    if span is not None and span.end > span.start:
        inst.add("DURATION", span.end - span.start)
    elif master.name == "VTODO" and "DUE" in master:
        inst.add("DUE", rid)
    return inst


def _shell(cal: Calendar) -> Calendar:
    out = Calendar()
    out.add("VERSION", "2.0")
    out.add("PRODID", str(cal.get("PRODID", PRODID)))
    if "CALSCALE" in cal:
        out.add("CALSCALE", cal["CALSCALE"])
    return out


# --- privacy -----------------------------------------------------------------

# What a reader without write rights sees of a PRIVATE/CONFIDENTIAL component:
# enough to place busy time (RFC 4791 §7.10 properties) and nothing else.
_KEEP_PRIVATE = frozenset({
    "UID", "DTSTAMP", "DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE",
    "EXDATE", "RECURRENCE-ID", "CLASS", "TRANSP", "STATUS", "SEQUENCE",
    "CREATED", "LAST-MODIFIED",
})


def redact_private(data: bytes | str | Calendar, label: str = "Bận") -> bytes:
    """Reduce CLASS:PRIVATE/CONFIDENTIAL components to busy blocks.

    Keeps only the time and identity properties (`_KEEP_PRIVATE`), sets
    SUMMARY to ``label`` ("Bận" — busy) and drops DESCRIPTION, LOCATION,
    ATTENDEE, ORGANIZER and all VALARMs. Public components are unchanged;
    unknown CLASS values count as PRIVATE (RFC 5545 §3.8.1.3).
    """
    cal = load_calendar(data)
    for comp in cal.subcomponents:
        if comp.name not in OBJECT_TYPES:
            continue
        if str(comp.get("CLASS", "PUBLIC")).upper() == "PUBLIC":
            continue
        for name in list(comp.keys()):
            if name.upper() not in _KEEP_PRIVATE:
                del comp[name]
        comp.add("SUMMARY", label)
        comp.subcomponents = []
    return cal.to_ical()
