"""RFC 4791 §9.7 calendar-query filters and the index prefilter (congvu.calendar.filters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from congvu.calendar import ical
from congvu.calendar.davreport import CalendarQuery, parse_report
from congvu.calendar.filters import (
    CompFilter,
    IndexRange,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
    index_may_match,
    index_prefilter,
    matches,
    text_matches,
)


def ics(body: str) -> bytes:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + body.strip() + "\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def event_filter(start: datetime | None, end: datetime | None, comp: str = "VEVENT",
                 **kw: object) -> CompFilter:
    return CompFilter("VCALENDAR", comp_filters=(
        CompFilter(comp, time_range=TimeRange(start, end), **kw),))  # type: ignore[arg-type]


def query(body: str) -> CalendarQuery:
    report = parse_report(body.encode())
    assert isinstance(report, CalendarQuery)
    return report


# Thunderbird's calendar-query for the events of a month.
THUNDERBIRD_QUERY = """<?xml version="1.0" encoding="UTF-8"?>
<calendar-query xmlns:D="DAV:" xmlns="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
  </D:prop>
  <filter>
    <comp-filter name="VCALENDAR">
      <comp-filter name="VEVENT">
        <time-range start="20240101T000000Z" end="20240201T000000Z"/>
      </comp-filter>
    </comp-filter>
  </filter>
</calendar-query>"""

# iPhone: ETags of everything from a start onwards, no end.
IPHONE_QUERY = """<?xml version="1.0" encoding="UTF-8"?>
<B:calendar-query xmlns:B="urn:ietf:params:xml:ns:caldav">
  <A:prop xmlns:A="DAV:">
    <A:getetag/>
    <A:getcontenttype/>
  </A:prop>
  <B:filter>
    <B:comp-filter name="VCALENDAR">
      <B:comp-filter name="VEVENT">
        <B:time-range start="20240110T000000Z"/>
      </B:comp-filter>
    </B:comp-filter>
  </B:filter>
</B:calendar-query>"""

WEEKLY = ics("""
BEGIN:VEVENT
UID:weekly
DTSTAMP:20240101T000000Z
DTSTART:20240101T020000Z
DTEND:20240101T030000Z
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE:20240108T020000Z
SUMMARY:Họp giao ban
END:VEVENT
BEGIN:VEVENT
UID:weekly
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240115T020000Z
DTSTART:20240116T070000Z
DTEND:20240116T080000Z
SUMMARY:Họp giao ban (dời)
END:VEVENT
""")

SINGLE = ics("""
BEGIN:VEVENT
UID:single
DTSTAMP:20240101T000000Z
DTSTART:20240115T020000Z
DTEND:20240115T030000Z
SUMMARY:Tiếp công dân
LOCATION:Phòng tiếp dân
ATTENDEE;PARTSTAT=ACCEPTED;CN=Trần Thị Bình:mailto:binh@hanoi.gov.vn
CATEGORIES:CÔNG VIỆC,HỌP
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
DESCRIPTION:Nhắc
END:VALARM
END:VEVENT
""")

ALL_DAY = ics("""
BEGIN:VEVENT
UID:holiday
DTSTAMP:20240101T000000Z
DTSTART;VALUE=DATE:20240902
DTEND;VALUE=DATE:20240903
SUMMARY:Quốc khánh
END:VEVENT
""")


def test_thunderbird_month_query() -> None:
    q = query(THUNDERBIRD_QUERY)
    assert q.props.props == ("{DAV:}getetag",)
    assert matches(q.filter, SINGLE)
    assert matches(q.filter, WEEKLY)
    assert not matches(q.filter, ALL_DAY)
    assert index_prefilter(q.filter) == IndexRange("VEVENT", utc(2024, 1, 1), utc(2024, 2, 1))


def test_iphone_start_only_range() -> None:
    q = query(IPHONE_QUERY)
    rng = index_prefilter(q.filter)
    assert rng == IndexRange("VEVENT", utc(2024, 1, 10), None)
    assert matches(q.filter, SINGLE)
    assert matches(q.filter, ALL_DAY)
    early = ics("BEGIN:VEVENT\nUID:e\nDTSTART:20231201T000000Z\nDTEND:20231201T010000Z\n"
                "END:VEVENT")
    assert not matches(q.filter, early)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2024, 1, 1), utc(2024, 1, 2), True),         # first instance
        (utc(2024, 1, 8), utc(2024, 1, 9), False),        # EXDATE
        (utc(2024, 1, 15), utc(2024, 1, 16), False),      # original slot of the moved one
        (utc(2024, 1, 16, 7), utc(2024, 1, 16, 8), True),  # moved instance
        (utc(2024, 2, 5), utc(2024, 2, 6), True),         # last of COUNT=6
        (utc(2024, 2, 12), utc(2024, 3, 1), False),       # after the series
        (utc(2024, 1, 1, 3), utc(2024, 1, 1, 4), False),  # end is exclusive
        (None, utc(2024, 1, 1, 2), False),                # open start, ends at DTSTART
        (utc(2024, 2, 5, 2, 59), None, True),             # open end
    ],
)
def test_recurring_event_with_exdate_and_override(
    start: datetime | None, end: datetime | None, expected: bool
) -> None:
    assert matches(event_filter(start, end), WEEKLY) is expected


def test_time_range_and_text_match_apply_to_the_same_instance() -> None:
    moved = TextMatch("dời")
    flt = event_filter(utc(2024, 1, 1), utc(2024, 1, 2), prop_filters=(
        PropFilter("SUMMARY", text_match=moved),))
    assert not matches(flt, WEEKLY)  # Jan 1 instance is not the moved one
    flt = event_filter(utc(2024, 1, 16), utc(2024, 1, 17), prop_filters=(
        PropFilter("SUMMARY", text_match=moved),))
    assert matches(flt, WEEKLY)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(2024, 9, 1), utc(2024, 9, 2), False),
        (utc(2024, 9, 1), utc(2024, 9, 2, 0, 0, 1), True),
        (utc(2024, 9, 2, 23), utc(2024, 9, 4), True),
        (utc(2024, 9, 3), utc(2024, 9, 4), False),
    ],
)
def test_all_day_event_boundaries(start: datetime, end: datetime, expected: bool) -> None:
    assert matches(event_filter(start, end), ALL_DAY) is expected


def test_all_day_without_dtend_lasts_one_day_and_instant_event() -> None:
    no_end = ics("BEGIN:VEVENT\nUID:d\nDTSTART;VALUE=DATE:20240902\nEND:VEVENT")
    assert matches(event_filter(utc(2024, 9, 2, 12), utc(2024, 9, 2, 13)), no_end)
    instant = ics("BEGIN:VEVENT\nUID:i\nDTSTART:20240902T020000Z\nEND:VEVENT")
    # §9.9: (start <= DTSTART AND end > DTSTART)
    assert matches(event_filter(utc(2024, 9, 2, 2), utc(2024, 9, 2, 3)), instant)
    assert not matches(event_filter(utc(2024, 9, 2, 1), utc(2024, 9, 2, 2)), instant)
    zero = ics("BEGIN:VEVENT\nUID:z\nDTSTART:20240902T020000Z\nDURATION:PT0S\nEND:VEVENT")
    assert matches(event_filter(utc(2024, 9, 2, 2), utc(2024, 9, 2, 3)), zero)


def _todo(props: str) -> bytes:
    return ics(f"BEGIN:VTODO\nUID:t\nDTSTAMP:20240101T000000Z\n{props}\nEND:VTODO")


# RFC 4791 §9.9 VTODO table, one case per row (window is [10:00, 12:00) on Jan 10).
W = (utc(2024, 1, 10, 10), utc(2024, 1, 10, 12))


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ("DTSTART:20240110T090000Z\nDURATION:PT2H", True),        # Y Y N: overlaps
        ("DTSTART:20240110T070000Z\nDURATION:PT2H", False),       # ends 09:00
        ("DTSTART:20240110T080000Z\nDUE:20240110T100000Z", False),  # Y N Y: start < DUE fails
        ("DTSTART:20240110T080000Z\nDUE:20240110T100001Z", True),
        ("DTSTART:20240110T110000Z", True),                       # Y N N
        ("DTSTART:20240110T120000Z", False),                      # end > DTSTART fails
        ("DUE:20240110T120000Z", True),                           # N N Y: end >= DUE
        ("DUE:20240110T100000Z", False),                          # start < DUE fails
        ("COMPLETED:20240110T110000Z\nCREATED:20240101T000000Z", True),   # N N N Y Y
        ("COMPLETED:20240109T110000Z\nCREATED:20240101T000000Z", False),
        ("COMPLETED:20240110T120000Z", True),                     # N N N Y N: end >= COMPLETED
        ("CREATED:20240110T115959Z", True),                       # N N N N Y
        ("CREATED:20240110T120000Z", False),
        ("SUMMARY:no dates", True),                               # N N N N N
    ],
)
def test_vtodo_time_range_table(props: str, expected: bool) -> None:
    body = _todo(props)
    flt = event_filter(*W, comp="VTODO")
    assert matches(flt, body) is expected
    # The index envelope must never exclude a match.
    obj = ical.parse_calendar_object(body)
    rng = index_prefilter(flt)
    assert rng is not None
    if expected:
        assert index_may_match(rng, obj.first_start, obj.last_end)


def test_index_prefilter_is_a_superset_of_exact_matches() -> None:
    bodies = [WEEKLY, SINGLE, ALL_DAY,
              ics("BEGIN:VEVENT\nUID:i\nDTSTART:20240115T020000Z\nEND:VEVENT"),
              ics("BEGIN:VEVENT\nUID:x\nDTSTART:20240101T020000Z\nDURATION:PT1H\n"
                  "RRULE:FREQ=DAILY\nEND:VEVENT")]
    objects = [ical.parse_calendar_object(b) for b in bodies]
    calendars = [ical.load_calendar(b) for b in bodies]
    base = utc(2023, 12, 30)
    for hours in range(0, 24 * 60, 29):
        for length in (1, 24, 24 * 9):
            start = base + timedelta(hours=hours)
            for lo, hi in ((start, start + timedelta(hours=length)), (start, None), (None, start)):
                flt = event_filter(lo, hi)
                rng = index_prefilter(flt)
                assert rng is not None
                for cal, obj in zip(calendars, objects, strict=True):
                    if matches(flt, cal):
                        assert index_may_match(rng, obj.first_start, obj.last_end), (lo, hi)


def test_index_prefilter_without_time_range_or_component() -> None:
    assert index_prefilter(CompFilter("VCALENDAR")) is None
    only_type = CompFilter("VCALENDAR", comp_filters=(CompFilter("VTODO"),))
    assert index_prefilter(only_type) == IndexRange("VTODO", None, None)


def test_comp_filter_is_not_defined_and_type_mismatch() -> None:
    no_todo = CompFilter("VCALENDAR", comp_filters=(CompFilter("VTODO", is_not_defined=True),))
    assert matches(no_todo, SINGLE)
    todo = CompFilter("VCALENDAR", comp_filters=(CompFilter("VTODO"),))
    assert not matches(todo, SINGLE)


@pytest.mark.parametrize(
    ("prop_filter", "expected"),
    [
        (PropFilter("LOCATION"), True),
        (PropFilter("LOCATION", is_not_defined=True), False),
        (PropFilter("DESCRIPTION", is_not_defined=True), True),
        (PropFilter("SUMMARY", text_match=TextMatch("tiếp", "i;unicode-casemap")), True),
        (PropFilter("SUMMARY", text_match=TextMatch("TIẾP", "i;unicode-casemap")), True),
        (PropFilter("SUMMARY", text_match=TextMatch("TIẾP", "i;ascii-casemap")), False),
        (PropFilter("SUMMARY", text_match=TextMatch("TIếP", "i;ascii-casemap")), True),
        (PropFilter("SUMMARY", text_match=TextMatch("tiếp", "i;octet")), False),
        (PropFilter("SUMMARY", text_match=TextMatch("Tiếp", "i;octet")), True),
        (PropFilter("SUMMARY", text_match=TextMatch("tiếp", negate=True)), False),
        (PropFilter("SUMMARY", text_match=TextMatch("họp", negate=True)), True),
        (PropFilter("SUMMARY", text_match=TextMatch("tiếp công dân", match_type="equals")),
         True),
        (PropFilter("SUMMARY", text_match=TextMatch("dân", match_type="starts-with")), False),
        (PropFilter("SUMMARY", text_match=TextMatch("dân", match_type="ends-with")), True),
        (PropFilter("UID", text_match=TextMatch("single", match_type="equals")), True),
        (PropFilter("ATTENDEE", param_filters=(
            ParamFilter("PARTSTAT", text_match=TextMatch("ACCEPTED", match_type="equals")),)),
         True),
        (PropFilter("ATTENDEE", param_filters=(ParamFilter("ROLE", is_not_defined=True),)), True),
        (PropFilter("ATTENDEE", param_filters=(ParamFilter("ROLE"),)), False),
        (PropFilter("ATTENDEE", text_match=TextMatch("BINH@HANOI")), True),
        (PropFilter("DTSTAMP", time_range=TimeRange(utc(2024, 1, 1), utc(2024, 1, 2))), True),
        (PropFilter("DTSTAMP", time_range=TimeRange(utc(2024, 1, 2), None)), False),
    ],
)
def test_prop_and_param_filters(prop_filter: PropFilter, expected: bool) -> None:
    flt = CompFilter("VCALENDAR", comp_filters=(
        CompFilter("VEVENT", prop_filters=(prop_filter,)),))
    assert matches(flt, SINGLE) is expected


def test_valarm_time_range() -> None:
    def alarm_at(start: datetime, end: datetime) -> CompFilter:
        return CompFilter("VCALENDAR", comp_filters=(CompFilter("VEVENT", comp_filters=(
            CompFilter("VALARM", time_range=TimeRange(start, end)),)),))

    assert matches(alarm_at(utc(2024, 1, 15, 1, 40), utc(2024, 1, 15, 1, 50)), SINGLE)
    assert not matches(alarm_at(utc(2024, 1, 15, 1, 50), utc(2024, 1, 15, 2)), SINGLE)


def test_text_match_unicode_casemap_ignores_composition() -> None:
    decomposed = "Ho\u0323p"  # "Họp" written with a combining dot below
    assert text_matches(TextMatch("HỌP", "i;unicode-casemap", match_type="equals"), decomposed)
