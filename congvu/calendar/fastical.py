"""A fast reader for the common calendar object body, beside `ical`'s full one.

Parsing a PUT body with ``icalendar.Calendar.from_ical`` costs most of a
CalDAV PUT's Python time, and nearly every body a client sends is the same
simple shape: one VCALENDAR with VERSION and PRODID, one VEVENT or VTODO
(perhaps with VALARMs), UTC or Olson-zone or all-day times, maybe a simple
RRULE. `parse_simple` reads exactly that shape and returns the
`ical.CalendarObject` the full path would return, field for field — or None
for ANYTHING outside it, and the caller runs the full path, which also
raises every validation error (so errors always come from one place).

How it stays equal to the full path: the line grammar accepted here is a
strict subset of icalendar's (CRLF only, no empty lines, upper-case names,
plain parameters without backslashes or ``^``), property values go through
icalendar's own value types (``TypesFactory``: the same ``from_ical`` with
the same TZID and VALUE the full parser would pass), and the index facts are
computed by the same `icaltime`/`ical` functions over a small stand-in
component (ORGANIZER and ATTENDEE are split by icalendar's own Contentline
and read by `ical.attendee_of`). Properties whose type could fail or change
the facts in ways not reproduced here (RDATE, RECURRENCE-ID, METHOD,
unknown IANA names...) make it give up; EXDATE is read (it can make an
object floating) but its series is expanded the full way.
tests/calendar/test_fastical.py compares both paths over a broad corpus and
random mutations.

`series` (kept on the `CalendarObject`, outside equality) is what
`objects.recurring_spans` needs to expand a bounded recurring VEVENT without
parsing the body again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar.parser import Contentline
from icalendar.prop import TypesFactory, vCalAddress, vCategory, vDDDTypes, vText, vUnknown

from congvu.calendar import icaltime

__all__ = ["Series", "parse_simple", "series_spans"]

_types = TypesFactory.instance() if hasattr(TypesFactory, "instance") else TypesFactory()

# name[;param=value[,value]...]:value — parameters without backslash or
# RFC 6868 caret, spaces only inside a value (icalendar strips them around
# delimiters), quoted values without quotes.
_PVAL = r'(?:"[^"\^]*"|[^";:,\s\\\^"]+(?: +[^";:,\s\\\^"]+)*)'
_LINE = re.compile(
    r"([A-Z][A-Z0-9-]*)((?:;[A-Z][A-Z0-9-]*=" + _PVAL + r"(?:," + _PVAL + r")*)*):(.*)",
    re.DOTALL,
)
_PARAM = re.compile(r";([A-Z][A-Z0-9-]*)=(" + _PVAL + r"(?:," + _PVAL + r")*)")
_UNFOLD = re.compile(r"\r\n[ \t]")
_UNESCAPE = re.compile(r"\\([\\,;:nN])")
_TZID = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")

# Where each component may appear (anything else: give up).
_CHILDREN = {
    "VCALENDAR": ("VEVENT", "VTODO", "VTIMEZONE"),
    "VEVENT": ("VALARM",),
    "VTODO": ("VALARM",),
    "VTIMEZONE": ("STANDARD", "DAYLIGHT"),
    "STANDARD": (),
    "DAYLIGHT": (),
    "VALARM": (),
}
# icalendar value types whose from_ical is called here exactly as the full
# parser calls it (a failure there is a property error: give up).
_CHECKED = frozenset({"vDDDTypes", "vDDDLists", "vDate", "vDatetime", "vDuration", "vInt",
                      "vRecur", "vUri", "vUTCOffset", "vGeo", "vFloat", "vBoolean"})
# Never read here: they carry scheduling or recurrence facts reproduced only
# by the full path, or they are not allowed in a stored object.
_REFUSED = frozenset({"RDATE", "EXRULE", "RECURRENCE-ID", "METHOD", "FREEBUSY",
                      "X-WR-TIMEZONE"})
# icalendar passes the TZID parameter to these (ComponentIcalParser.datetime_names).
_TZ_NAMES = frozenset({"DTSTART", "DTEND", "RECURRENCE-ID", "DUE", "RDATE", "EXDATE"})
# Read from the object component: one each at most.
_SINGLE = frozenset({"UID", "SUMMARY", "CLASS", "SEQUENCE", "DTSTAMP", "DTSTART", "DTEND",
                     "DUE", "DURATION", "RRULE", "COMPLETED", "CREATED"})


class _Comp(dict[str, Any]):
    """Stand-in for an icalendar component: property objects by name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


@dataclass(frozen=True, slots=True)
class Series:
    """A bounded recurring VEVENT as `series_spans` expands it."""

    dtstart: date | datetime
    dtend: date | datetime | None
    duration: timedelta | None
    rrule: str  # the RRULE as icalendar writes it (vRecur.to_ical)
    # a COUNT rule's occurrences from DTSTART (naive midnight for a DATE), once
    occurrences: tuple[datetime, ...] | None = None


@lru_cache(maxsize=256)
def _known_zone(tzid: str) -> bool:
    if not _TZID.fullmatch(tzid):
        return False
    try:
        ZoneInfo(tzid)
    except Exception:
        return False
    return True


class _GiveUp(Exception):
    pass


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _lines(data: bytes | str) -> tuple[bytes, list[str]] | None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # `ical._storable_as_sent`: stored as sent only when UTF-8, no BOM, CRLF only.
    # (and `ical.load_calendar` looks for BEGIN:VCALENDAR before unfolding)
    if not raw.startswith(b"BEGIN:VCALENDAR\r\n") or not raw.endswith(b"\r\n"):
        return None
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf or raw.count(b"\r") != crlf or b"\r\n\r\n" in raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = _UNFOLD.sub("", text)
    lines = text.split("\r\n")
    if lines[-1] != "" or "" in lines[:-1]:
        return None
    lines.pop()
    return raw, lines


class _P:
    """Stand-in for a date/date-time property: what `icaltime.prop_dt` reads."""

    __slots__ = ("dt",)

    def __init__(self, dt: date | datetime) -> None:
        self.dt = dt


# The UTC tzinfo icalendar gives a "Z" date-time (its zone provider's).
_ICAL_UTC = vDDDTypes.from_ical("20000101T000000Z").tzinfo
_DIGITS = re.compile(r"[0-9]{8}(?:T[0-9]{6}Z?)?")
_factories: dict[tuple[str, str | None], Any] = {}


def _factory(name: str, vtype: str | None) -> Any:
    key = (name, vtype)
    factory = _factories.get(key)
    if factory is None:
        factory = _types.for_property(name, vtype) if vtype else _types.for_property(name)
        if len(_factories) < 512:
            _factories[key] = factory
    return factory


def _value(name: str, params: dict[str, str], value: str) -> Any:
    """The property object icalendar would build (raises _GiveUp on any doubt).

    Text comes back as a plain str (what ``str()`` of icalendar's vText
    gives), plain date/date-time forms as `_P` holding the value
    icalendar's vDDDTypes.from_ical returns for them.
    """
    vtype = params.get("VALUE") if params else None
    if vtype is not None and vtype not in ("DATE", "DATE-TIME"):
        raise _GiveUp
    factory = _factory(name, vtype)
    if factory is vText:
        return _unescape(value)
    if factory is vDDDTypes and "TZID" not in params and _DIGITS.fullmatch(value):
        try:
            d = date(int(value[:4]), int(value[4:6]), int(value[6:8]))
            if len(value) == 8:
                return _P(d)
            t = (int(value[9:11]), int(value[11:13]), int(value[13:15]))
            return _P(datetime(d.year, d.month, d.day, *t,
                               tzinfo=_ICAL_UTC if len(value) == 16 else None))
        except ValueError as exc:
            raise _GiveUp from exc
    if factory is vUnknown:
        return None  # X- properties: never read, never fail
    if factory is vCategory:
        return None  # split on commas, never fails
    if factory.__name__ not in _CHECKED or "\\" in value:
        raise _GiveUp
    tzid = params.get("TZID") if name in _TZ_NAMES else None
    try:
        if tzid:
            if not _TZID.fullmatch(tzid):
                raise _GiveUp
            parsed = factory.from_ical(value, tzid)
            for one in parsed if isinstance(parsed, list) else (parsed,):
                if not (isinstance(one, datetime) and isinstance(one.tzinfo, ZoneInfo)
                        and one.tzinfo.key == tzid):
                    raise _GiveUp  # an unknown or aliased zone: the full path decides
        else:
            parsed = factory.from_ical(value)
    except _GiveUp:
        raise
    except Exception as exc:
        raise _GiveUp from exc
    return factory(parsed)


_ADDRESSES = ("ORGANIZER", "ATTENDEE")


def _address(line: str) -> Any:
    """An ORGANIZER/ATTENDEE property exactly as icalendar builds it: its own
    content-line split (parameter quoting and unescaping) and value type."""
    try:
        _name, params, value = Contentline(line).parts()
        prop = vCalAddress(vCalAddress.from_ical(value))
        prop.params = params
    except Exception as exc:
        raise _GiveUp from exc
    return prop


def parse_simple(
    data: bytes | str,
    *,
    floating_tz: tzinfo = UTC,
    floating_key: str = "UTC",
    supported: tuple[str, ...] = ("VEVENT", "VTODO", "VJOURNAL"),
) -> Any:
    """The `ical.CalendarObject` of a simple body, or None (use the full path)."""
    try:
        return _parse(data, floating_tz, floating_key, supported)
    except Exception:  # anything unexpected: the full path decides
        return None


def _parse(data: bytes | str, floating_tz: tzinfo, floating_key: str,
           supported: tuple[str, ...]) -> Any:
    from congvu.calendar import ical  # ical imports this module

    got = _lines(data)
    if got is None:
        return None
    raw, lines = got
    if lines[0] != "BEGIN:VCALENDAR" or lines[-1] != "END:VCALENDAR":
        return None
    stack: list[str] = []
    cal_props: set[str] = set()
    main: _Comp | None = None
    in_main = False
    tzid_seen = False
    try:
        last = len(lines) - 1
        for i, line in enumerate(lines):
            if line.startswith(("BEGIN:", "END:")):
                begin = line[0] == "B"
                cname = line[6:] if begin else line[4:]
                if begin:
                    if stack:
                        if cname not in _CHILDREN[stack[-1]]:
                            return None
                    elif cname != "VCALENDAR":
                        return None
                    tzid_seen = False
                    if cname in ("VEVENT", "VTODO"):
                        if main is not None:
                            return None
                        main = _Comp(cname)
                        in_main = True
                    stack.append(cname)
                else:
                    if not stack or stack[-1] != cname:
                        return None
                    stack.pop()
                    if cname in ("VEVENT", "VTODO"):
                        in_main = False
                    if not stack and i != last:
                        return None
                continue
            if not stack:
                return None
            m = _LINE.fullmatch(line)
            if m is None:
                return None
            name, pstr, value = m.groups()
            if name in _REFUSED or name in ("BEGIN", "END"):
                return None
            params: dict[str, str] = {}
            if pstr:
                n = 0
                for pm in _PARAM.finditer(pstr):
                    params[pm.group(1)] = pm.group(2)
                    n += 1
                if len(params) != n:
                    return None  # a repeated parameter
                if ("TZID" in params or "VALUE" in params) and name not in (
                        "DTSTART", "DTEND", "DUE", "EXDATE", "TRIGGER"):
                    return None
            where = stack[-1]
            if name in _ADDRESSES:
                prop = _address(line)
                if in_main and where == main.name:  # type: ignore[union-attr]
                    main.setdefault(name, []).append(prop)  # type: ignore[union-attr]
                continue
            prop = _value(name, params, value)
            if where == "VCALENDAR":
                if name in cal_props and not name.startswith("X-"):
                    return None
                cal_props.add(name)
                if name == "CALSCALE" and str(prop).upper() != "GREGORIAN":
                    return None
            elif where == "VTIMEZONE" and name == "TZID":
                if not _known_zone(str(prop)) or tzid_seen:
                    return None  # icalendar would build (and cache) a zone from it
                tzid_seen = True
            elif in_main and where == main.name:  # type: ignore[union-attr]
                if name == "EXDATE":  # repeatable; only `has_floating` reads it here
                    main.setdefault(name, []).append(prop)  # type: ignore[union-attr]
                    continue
                if name in main:  # type: ignore[operator]
                    if name in _SINGLE:
                        return None
                    continue
                if name == "RRULE" and params:
                    return None
                main[name] = prop  # type: ignore[index]
    except _GiveUp:
        return None
    if stack or main is None or "VERSION" not in cal_props or "PRODID" not in cal_props:
        return None
    ctype = main.name
    if ctype not in supported:
        return None  # the full path answers UnsupportedComponent
    return _facts(ical, main, ctype, raw, floating_tz, floating_key)


def _facts(ical: Any, main: _Comp, ctype: str, raw: bytes, floating_tz: tzinfo,
           floating_key: str) -> Any:
    prop_dt = icaltime.prop_dt
    # ical._check_component, with every failure left to the full path.
    for name in ("DTSTART", "DTEND", "DUE"):
        if name in main and prop_dt(main, name) is None:  # type: ignore[arg-type]
            return None
    uid = main.get("UID")
    if uid is None or not str(uid).strip():
        return None
    if "DURATION" in main and ("DTEND" in main or "DUE" in main):
        return None
    if "DTSTART" not in main and (ctype == "VEVENT" or "RRULE" in main):
        return None
    if ctype == "VTODO" and "DTEND" in main:
        return None  # not a VTODO property: leave it to the full path
    if ctype == "VEVENT" and "DUE" in main:
        return None
    dtstamp = prop_dt(main, "DTSTAMP")  # type: ignore[arg-type]
    if dtstamp is None:
        return None  # the full path adds one and serialises again
    comp: Any = main
    lo, hi = ical._single_envelope(comp, floating_tz)
    last: datetime | None = hi
    series = None
    if "RRULE" in main:
        rule = main["RRULE"]
        if "COUNT" in rule and "UNTIL" in rule:
            return None
        raw_rule = rule.to_ical()
        text = raw_rule.decode() if isinstance(raw_rule, bytes) else str(raw_rule)
        occurrences = None
        if "COUNT" in rule:
            end, occurrences = _counted_last_end(main, rule, text, lo, hi, floating_tz)
        else:  # UNTIL or unbounded: ical's formula, which expands nothing
            end = ical._series_last_end(_NoCalendar(), ctype, comp, floating_tz, lo, hi)
        last = None if hi is None or end is None else max(hi, end)
        series = _series_of(main, text, occurrences)
    class_ = str(main.get("CLASS", "PUBLIC")).upper()
    seq = main.get("SEQUENCE")
    try:
        sequence = int(str(seq)) if seq is not None else 0
    except ValueError:
        sequence = 0
    summary = main.get("SUMMARY")
    organizers = main.get("ORGANIZER")
    return ical.CalendarObject(
        uid=str(uid),
        component=ctype,
        is_recurring="RRULE" in main,
        first_start=lo,
        last_end=last,
        class_=class_ if class_ in ical._CLASSES else "PRIVATE",
        organizer=None if not organizers else ical.attendee_of(organizers[0], None),
        attendees=tuple(ical.attendee_of(a) for a in main.get("ATTENDEE", ())),
        sequence=sequence,
        summary=None if summary is None else str(summary),
        dtstamp=icaltime.to_utc(dtstamp),
        data=raw,
        floating=icaltime.has_floating([comp]),
        floating_tz=floating_tz,
        floating_key=floating_key,
        series=series,
    )


class _NoCalendar:
    """The calendar argument of `ical._series_last_end` where it must not expand."""

    @property
    def subcomponents(self) -> list[Any]:
        raise _GiveUp


def _counted_last_end(
    main: _Comp, rule: Any, text: str, lo: datetime, hi: datetime | None, floating_tz: tzinfo,
) -> tuple[datetime | None, tuple[datetime, ...] | None]:
    """`ical._series_last_end` for a COUNT rule (no RDATE here), iterating the
    rule once and keeping its occurrences for `series_spans`."""
    if hi is None:
        return None, None
    count = int(rule["COUNT"][0])
    if count > icaltime.MAX_INSTANCES:
        return None, None
    # ical._last_counted_start
    dtstart = main["DTSTART"].dt
    start = dtstart if isinstance(dtstart, datetime) else datetime(
        dtstart.year, dtstart.month, dtstart.day)
    try:
        occurrences = tuple(rrulestr(text, dtstart=start))
    except (ValueError, TypeError) as exc:
        raise _GiveUp from exc  # the full path expands the whole series
    if not occurrences:
        raise _GiveUp
    last_start = icaltime.to_utc(occurrences[-1], floating_tz)
    return max(hi, last_start + (hi - lo)), occurrences


def _series_of(main: _Comp, text: str,
               occurrences: tuple[datetime, ...] | None) -> Series | None:
    """What `series_spans` needs, when it can reproduce recurring-ical-events."""
    if main.name != "VEVENT" or "EXDATE" in main:
        return None  # (EXDATE: recurring-ical-events' matching is not reproduced)
    dtstart = main["DTSTART"].dt
    dtend = icaltime.prop_dt(main, "DTEND")  # type: ignore[arg-type]
    dur = main.get("DURATION")
    duration = dur.dt if dur is not None else None
    if dur is not None and not isinstance(duration, timedelta):
        return None
    return Series(dtstart, dtend, duration, text, occurrences)


def _same_kind(a: date | datetime, b: date | datetime) -> bool:
    if isinstance(a, datetime) != isinstance(b, datetime):
        return False
    if not isinstance(a, datetime):
        return True
    assert isinstance(b, datetime)
    if a.tzinfo is None or b.tzinfo is None:
        return a.tzinfo is None and b.tzinfo is None
    return a.tzinfo is b.tzinfo or (
        isinstance(a.tzinfo, ZoneInfo) and isinstance(b.tzinfo, ZoneInfo)
        and a.tzinfo.key == b.tzinfo.key)


_UNTIL = re.compile(r"UNTIL=([0-9TZ]+)")
_SIMPLE_RULE = re.compile(
    r"(?:(?:FREQ=(?:DAILY|WEEKLY|MONTHLY|YEARLY)|COUNT=[1-9][0-9]{0,3}|INTERVAL=[1-9][0-9]{0,2}"
    r"|UNTIL=[0-9]{8}(?:T[0-9]{6}Z)?|BYDAY=[A-Z,0-9+-]+|BYMONTHDAY=[0-9,+-]+|BYMONTH=[0-9,]+"
    r"|WKST=[A-Z]{2});?)+")


def series_spans(series: Series, floating_tz: tzinfo,
                 limit: int) -> tuple[tuple[datetime, datetime], ...] | bool | None:
    """Every instance's (start, end) in UTC as `icaltime.instances` + `event_span`
    give them, None past ``limit`` instances, or False when this simple
    expansion might differ (the caller expands the full way)."""
    start, dtend, duration, text = series.dtstart, series.dtend, series.duration, series.rrule
    if not _SIMPLE_RULE.fullmatch(text) or "FREQ=" not in text:
        return False
    if ("COUNT=" in text) == ("UNTIL=" in text):
        return False
    all_day = not isinstance(start, datetime)
    if dtend is not None:
        if not _same_kind(start, dtend) or dtend < start:
            return False
        length = dtend - start  # wall-clock difference, as recurring-ical-events
    elif duration is not None:
        if duration < timedelta(0) or (all_day and duration.seconds):
            return False
        length = duration
    else:
        length = timedelta(days=1) if all_day else timedelta(0)
    if "UNTIL=" in text:
        until = _UNTIL.search(text)
        # a DATE UNTIL only with a DATE start; a UTC one only with an aware start
        if until is None or all_day != (len(until.group(1)) == 8):
            return False
        if not all_day and start.tzinfo is None:  # type: ignore[union-attr]
            return False
    first = datetime(start.year, start.month, start.day) if all_day else start
    rule: Any = series.occurrences
    if rule is None:
        try:
            rule = rrulestr(text, dtstart=first)
        except (ValueError, TypeError):
            return False
    spans: list[tuple[datetime, datetime]] = []
    to_utc = icaltime.to_utc
    for n, occ in enumerate(rule):
        if n == 0 and occ != first:
            return False  # DTSTART outside the rule: it is an extra instance
        if n >= limit:
            return None
        if all_day:
            occ_start: date | datetime = occ.date()
            s = to_utc(occ_start, floating_tz)
            e = to_utc(occ_start + length, floating_tz)
        else:
            s = to_utc(occ, floating_tz)
            e = to_utc(occ + length, floating_tz)
        spans.append((s, max(s, e)))
    return tuple(spans) if spans else False
