"""Free/busy time: busy periods of stored objects and VFREEBUSY replies.

Used by the CALDAV:free-busy-query REPORT (RFC 4791 §7.10), the schedule
outbox POST (RFC 6638 §5) and room auto-accept. Only busy time leaves this
module — never a title — so it is safe to answer for any principal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from icalendar import Calendar, Component, FreeBusy
from icalendar.prop import vDDDLists

from congvu.calendar.icaltime import event_span, instances

__all__ = ["BusyPeriod", "busy_periods", "merge_periods", "vfreebusy_response"]

BUSY = "BUSY"
TENTATIVE = "BUSY-TENTATIVE"
UNAVAILABLE = "BUSY-UNAVAILABLE"
# Stronger kinds hide weaker ones where they overlap.
_RANK = {BUSY: 3, UNAVAILABLE: 2, TENTATIVE: 1}


@dataclass(frozen=True, slots=True, order=True)
class BusyPeriod:
    """A busy interval in UTC with its RFC 5545 §3.2.9 FBTYPE."""

    start: datetime
    end: datetime
    fbtype: str = BUSY


def _load(data: bytes | str | Calendar) -> Calendar:
    if isinstance(data, Calendar):
        return data
    return Calendar.from_ical(data)


def busy_periods(
    data: bytes | str | Calendar,
    start: datetime,
    end: datetime,
    floating_tz: tzinfo = UTC,
) -> list[BusyPeriod]:
    """Busy periods of one calendar object within [start, end), clipped.

    RFC 4791 §7.10: VEVENTs count unless TRANSP:TRANSPARENT or
    STATUS:CANCELLED; STATUS:TENTATIVE gives BUSY-TENTATIVE; zero-length
    events take no time. VFREEBUSY components contribute their FREEBUSY
    periods. Recurring events are expanded (overrides and EXDATE honoured).
    """
    cal = _load(data)
    out: list[BusyPeriod] = []
    for inst in instances(cal, "VEVENT", start, end, floating_tz):
        if str(inst.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        status = str(inst.get("STATUS", "CONFIRMED")).upper()
        if status == "CANCELLED":
            continue
        span = event_span(inst, floating_tz)
        if span is None or span.end <= span.start:
            continue
        fbtype = TENTATIVE if status == "TENTATIVE" else BUSY
        lo, hi = max(span.start, start), min(span.end, end)
        if lo < hi:
            out.append(BusyPeriod(lo, hi, fbtype))
    for comp in cal.walk("VFREEBUSY"):
        out.extend(_freebusy_props(comp, start, end))
    return out


def _freebusy_props(comp: Component, start: datetime, end: datetime) -> Iterable[BusyPeriod]:
    props = comp.get("FREEBUSY")
    for prop in props if isinstance(props, list) else ([props] if props is not None else []):
        fbtype = str(prop.params.get("FBTYPE", BUSY)).upper()
        if fbtype == "FREE":
            continue
        for value in getattr(prop, "dts", None) or [prop]:
            period = getattr(value, "dt", None)
            if not (isinstance(period, tuple) and len(period) == 2):
                continue
            p_start = period[0].astimezone(UTC)
            p_end = period[1]
            p_end = p_start + p_end if isinstance(p_end, timedelta) else p_end.astimezone(UTC)
            lo, hi = max(p_start, start), min(p_end, end)
            if lo < hi:
                yield BusyPeriod(lo, hi, fbtype if fbtype in _RANK else BUSY)


def _merge_same(periods: list[BusyPeriod]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for p in sorted(periods):
        if merged and p.start <= merged[-1][1]:
            if p.end > merged[-1][1]:
                merged[-1] = (merged[-1][0], p.end)
        else:
            merged.append((p.start, p.end))
    return merged


def _subtract(
    spans: list[tuple[datetime, datetime]], cover: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        pieces = [(lo, hi)]
        for c_lo, c_hi in cover:
            nxt: list[tuple[datetime, datetime]] = []
            for a, b in pieces:
                if c_hi <= a or c_lo >= b:
                    nxt.append((a, b))
                    continue
                if a < c_lo:
                    nxt.append((a, c_lo))
                if c_hi < b:
                    nxt.append((c_hi, b))
            pieces = nxt
        out.extend(pieces)
    return out


def merge_periods(periods: Iterable[BusyPeriod]) -> list[BusyPeriod]:
    """Merge overlapping/adjacent periods; BUSY hides UNAVAILABLE hides TENTATIVE."""
    by_type: dict[str, list[BusyPeriod]] = {}
    for p in periods:
        by_type.setdefault(p.fbtype, []).append(p)
    result: list[BusyPeriod] = []
    cover: list[tuple[datetime, datetime]] = []
    for fbtype in sorted(by_type, key=lambda t: -_RANK.get(t, 0)):
        spans = _subtract(_merge_same(by_type[fbtype]), cover)
        result.extend(BusyPeriod(a, b, fbtype) for a, b in spans)
        cover = _merge_same([*(BusyPeriod(a, b) for a, b in cover),
                             *(BusyPeriod(a, b) for a, b in spans)])
    return sorted(result)


def vfreebusy_response(
    periods: Iterable[BusyPeriod],
    start: datetime,
    end: datetime,
    *,
    dtstamp: datetime | None = None,
    organizer: str | None = None,
    attendee: str | None = None,
    uid: str | None = None,
    method: str | None = None,
) -> bytes:
    """A VCALENDAR with one VFREEBUSY (RFC 5545 §3.6.4) over [start, end).

    Periods are merged and grouped by FBTYPE, one FREEBUSY line per type,
    all in UTC. ``method="REPLY"`` with organizer/attendee/uid gives the
    RFC 6638 §5 schedule-response form; without it, the RFC 4791 §7.10
    free-busy-query form.
    """
    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", "-//Congvu//CalDAV Server//VI")
    if method:
        cal.add("METHOD", method)
    fb = FreeBusy()
    fb.add("DTSTAMP", (dtstamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0))
    fb.add("DTSTART", start.astimezone(UTC))
    fb.add("DTEND", end.astimezone(UTC))
    if uid:
        fb.add("UID", uid)
    if organizer:
        fb.add("ORGANIZER", organizer)
    if attendee:
        fb.add("ATTENDEE", attendee)
    merged = merge_periods(periods)
    grouped: dict[str, list[BusyPeriod]] = {}
    for p in merged:
        grouped.setdefault(p.fbtype, []).append(p)
    for fbtype in sorted(grouped, key=lambda t: -_RANK.get(t, 0)):
        _add_freebusy(fb, fbtype, grouped[fbtype])
    cal.add_component(fb)
    return cal.to_ical()


def _add_freebusy(fb: FreeBusy, fbtype: str, periods: Sequence[BusyPeriod]) -> None:
    # RFC 5545 §3.8.2.6: one FREEBUSY line may carry a comma-separated list.
    value = vDDDLists([(p.start, p.end) for p in periods])
    value.params["FBTYPE"] = fbtype
    fb.add("FREEBUSY", value, encode=False)
