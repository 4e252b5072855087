"""Lenient iCalendar parsing, expansion, free/busy and redaction (congvu.calendar.ical)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from congvu.calendar import ical
from congvu.calendar.freebusy import BusyPeriod


def ics(body: str) -> bytes:
    """Wrap components in a VCALENDAR with CRLF line ends."""
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + body.strip() + "\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


FIXED_NOW = utc(2024, 3, 1, 8, 0, 0)

# Evolution: VTIMEZONE with a libical TZID and an RRULE UNTIL in local time.
EVOLUTION_WEEKLY = ics("""
BEGIN:VTIMEZONE
TZID:/freeassociation.sourceforge.net/Asia/Ho_Chi_Minh
X-LIC-LOCATION:Asia/Ho_Chi_Minh
BEGIN:STANDARD
TZNAME:+07
DTSTART:19750613T000000
TZOFFSETFROM:+0700
TZOFFSETTO:+0700
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:20240101T090000-evolution@localhost
DTSTAMP:20231220T101010Z
DTSTART;TZID=/freeassociation.sourceforge.net/Asia/Ho_Chi_Minh:20240101T090000
DTEND;TZID=/freeassociation.sourceforge.net/Asia/Ho_Chi_Minh:20240101T100000
RRULE:FREQ=WEEKLY;UNTIL=20240129T090000
SUMMARY:Giao ban
END:VEVENT
""")

# Weekly meeting, 09:00 Hanoi, one EXDATE and one moved instance.
WEEKLY_WITH_EXCEPTIONS = ics("""
BEGIN:VTIMEZONE
TZID:Asia/Ho_Chi_Minh
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0700
TZOFFSETTO:+0700
TZNAME:ICT
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly-1@congvu
DTSTAMP:20240101T000000Z
DTSTART;TZID=Asia/Ho_Chi_Minh:20240101T090000
DTEND;TZID=Asia/Ho_Chi_Minh:20240101T100000
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE;TZID=Asia/Ho_Chi_Minh:20240108T090000
SUMMARY:Họp giao ban
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@congvu
DTSTAMP:20240101T000000Z
RECURRENCE-ID;TZID=Asia/Ho_Chi_Minh:20240115T090000
DTSTART;TZID=Asia/Ho_Chi_Minh:20240116T140000
DTEND;TZID=Asia/Ho_Chi_Minh:20240116T150000
SUMMARY:Họp giao ban (dời)
END:VEVENT
""")


def test_evolution_non_utc_until_is_read_in_dtstart_zone() -> None:
    obj = ical.parse_calendar_object(EVOLUTION_WEEKLY)
    assert obj.is_recurring
    assert obj.first_start == utc(2024, 1, 1, 2)
    # UNTIL 2024-01-29 09:00 local = 02:00Z; last instance ends an hour later.
    assert obj.last_end == utc(2024, 1, 29, 3)
    out = Calendar.from_ical(ical.expand(obj.data, utc(2024, 1, 1), utc(2024, 3, 1)))
    assert len(out.walk("VEVENT")) == 5


def test_outlook_uid_of_250_chars() -> None:
    uid = "040000008200E00074C5B7101A82E008" + "0" * 218
    assert len(uid) == 250
    body = ics(f"""
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20240101T000000Z
DTSTART:20240110T020000Z
DTEND:20240110T030000Z
SUMMARY:Outlook meeting
END:VEVENT
""")
    obj = ical.parse_calendar_object(body)
    assert obj.uid == uid
    assert uid in ical.load_calendar(obj.data).walk("VEVENT")[0]["UID"]


def test_missing_dtstamp_is_added_and_method_dropped() -> None:
    body = ics("""
METHOD:REQUEST
BEGIN:VEVENT
UID:no-stamp
DTSTART:20240110T020000Z
DURATION:PT30M
END:VEVENT
""")
    obj = ical.parse_calendar_object(body, now=lambda: FIXED_NOW)
    assert obj.dtstamp == FIXED_NOW
    assert b"DTSTAMP:20240301T080000Z" in obj.data
    assert b"METHOD" not in obj.data
    assert obj.last_end == utc(2024, 1, 10, 2, 30)  # DURATION instead of DTEND


def test_clean_body_is_stored_as_sent_and_others_normalised() -> None:
    body = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            b"UID:as-sent\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20240110T020000Z\r\n"
            b"summary:H\xe1\xbb\x8dp \r\n  giao ban\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    assert ical.parse_calendar_object(body).data == body
    # bare LF line ends, a byte-order mark, a broken property: serialised again
    for other in (body.replace(b"\r\n", b"\n"), b"\xef\xbb\xbf" + body,
                  body.replace(b"summary:", b"GEO:abc\r\nsummary:")):
        data = ical.parse_calendar_object(other).data
        assert data != other and data.endswith(b"END:VCALENDAR\r\n")
        assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n")
        assert not data.startswith(b"\xef\xbb\xbf")


def test_floating_time_defaults_to_utc_and_can_use_calendar_zone() -> None:
    body = ics("""
BEGIN:VEVENT
UID:floating
DTSTAMP:20240101T000000Z
DTSTART:20240110T090000
DTEND:20240110T100000
END:VEVENT
""")
    assert ical.parse_calendar_object(body).first_start == utc(2024, 1, 10, 9)
    hanoi = timezone(timedelta(hours=7))
    assert ical.parse_calendar_object(body, floating_tz=hanoi).first_start == utc(2024, 1, 10, 2)


def test_all_day_event_spans_the_day() -> None:
    body = ics("""
BEGIN:VEVENT
UID:holiday
DTSTAMP:20240101T000000Z
DTSTART;VALUE=DATE:20240902
SUMMARY:Quốc khánh
END:VEVENT
""")
    obj = ical.parse_calendar_object(body)
    assert (obj.first_start, obj.last_end) == (utc(2024, 9, 2), utc(2024, 9, 3))
    assert obj.summary == "Quốc khánh"


def test_unknown_tzid_without_vtimezone_falls_back_to_utc() -> None:
    body = ics("""
BEGIN:VEVENT
UID:odd-tz
DTSTAMP:20240101T000000Z
DTSTART;TZID=Customized Time Zone 1:20240110T090000
DTEND;TZID=Customized Time Zone 1:20240110T100000
END:VEVENT
""")
    assert ical.parse_calendar_object(body).first_start == utc(2024, 1, 10, 9)


def test_infinite_rrule_has_unbounded_end_and_count_has_exact_end() -> None:
    endless = ics("""
BEGIN:VEVENT
UID:endless
DTSTAMP:20240101T000000Z
DTSTART:20240101T020000Z
DTEND:20240101T030000Z
RRULE:FREQ=DAILY
END:VEVENT
""")
    assert ical.parse_calendar_object(endless).last_end is None
    obj = ical.parse_calendar_object(WEEKLY_WITH_EXCEPTIONS)
    # 6 weekly instances from Jan 1 (02:00Z); last on Feb 5, ends 03:00Z.
    assert obj.last_end == utc(2024, 2, 5, 3)
    assert obj.first_start == utc(2024, 1, 1, 2)
    assert obj.is_recurring and obj.uid == "weekly-1@congvu"


def test_vtodo_dates_envelope() -> None:
    due_only = ics("""
BEGIN:VTODO
UID:todo-due
DTSTAMP:20240101T000000Z
DUE:20240115T100000Z
SUMMARY:Báo cáo quý
END:VTODO
""")
    obj = ical.parse_calendar_object(due_only)
    assert obj.component == "VTODO"
    assert obj.first_start == obj.last_end == utc(2024, 1, 15, 10)
    no_dates = ics("""
BEGIN:VTODO
UID:todo-none
DTSTAMP:20240101T000000Z
SUMMARY:Việc không hạn
END:VTODO
""")
    obj = ical.parse_calendar_object(no_dates)
    assert obj.last_end is None
    assert obj.first_start <= utc(1900, 1, 1)


def test_organizer_attendees_class_and_sequence() -> None:
    body = ics("""
BEGIN:VEVENT
UID:meeting
DTSTAMP:20240101T000000Z
DTSTART:20240110T020000Z
DTEND:20240110T030000Z
SEQUENCE:3
CLASS:X-SECRET
ORGANIZER;CN=Chánh Văn phòng;SENT-BY="mailto:thuky@hanoi.gov.vn":mailto:chanh@hanoi.gov.vn
ATTENDEE;CN=Nguyễn Văn An;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:An.Nguyen@Hanoi.gov.vn
ATTENDEE;SCHEDULE-AGENT=CLIENT;RSVP=TRUE:mailto:ext@example.com
END:VEVENT
""")
    obj = ical.parse_calendar_object(body)
    assert obj.class_ == "PRIVATE"  # RFC 5545 §3.8.1.3: unknown → PRIVATE
    assert obj.sequence == 3
    assert obj.organizer is not None and obj.organizer.email == "chanh@hanoi.gov.vn"
    assert obj.organizer.sent_by == "mailto:thuky@hanoi.gov.vn"
    first, second = obj.attendees
    assert first.address == "mailto:An.Nguyen@Hanoi.gov.vn"  # case kept
    assert (first.cn, first.partstat, first.role) == ("Nguyễn Văn An", "ACCEPTED",
                                                     "REQ-PARTICIPANT")
    assert second.partstat == "NEEDS-ACTION" and second.schedule_agent == "CLIENT"
    assert second.rsvp


@pytest.mark.parametrize(
    "body",
    [
        b"this is not a calendar",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",  # truncated
        ics("BEGIN:VEVENT\nDTSTART:20240101T000000Z\nEND:VEVENT"),  # no UID
        ics("BEGIN:VEVENT\nUID:a\nDTSTART:not-a-date\nEND:VEVENT"),
        ics("BEGIN:VEVENT\nUID:a\nSUMMARY:no start\nEND:VEVENT"),
        ics("BEGIN:VEVENT\nUID:a\nDTSTART:20240101T000000Z\nDTEND:20240101T010000Z\n"
            "DURATION:PT1H\nEND:VEVENT"),
        ics("BEGIN:VEVENT\nUID:a\nDTSTART:20240101T000000Z\nEND:VEVENT\n"
            "BEGIN:VEVENT\nUID:b\nDTSTART:20240101T000000Z\nEND:VEVENT"),
        ics("BEGIN:VEVENT\nUID:a\nDTSTART:20240101T000000Z\nEND:VEVENT\n"
            "BEGIN:VTODO\nUID:a\nEND:VTODO"),
        ics("BEGIN:VEVENT\nUID:a\nDTSTART:20240101T000000Z\nEND:VEVENT\n"
            "BEGIN:VEVENT\nUID:a\nDTSTART:20240102T000000Z\nEND:VEVENT"),
        ics("VERSION:2.0"),  # no component
    ],
    ids=["garbage", "truncated", "no-uid", "bad-dtstart", "no-dtstart", "dtend-and-duration",
         "two-uids", "two-types", "two-masters", "empty"],
)
def test_invalid_calendar_data(body: bytes) -> None:
    with pytest.raises(ical.InvalidCalendarData) as info:
        ical.parse_calendar_object(body)
    assert info.value.status == 400
    assert info.value.precondition == "{urn:ietf:params:xml:ns:caldav}valid-calendar-data"


def test_unsupported_component_is_403() -> None:
    body = ics("BEGIN:VFREEBUSY\nUID:fb\nDTSTART:20240101T000000Z\nEND:VFREEBUSY")
    with pytest.raises(ical.UnsupportedComponent) as info:
        ical.parse_calendar_object(body)
    assert info.value.status == 403
    assert info.value.precondition.endswith("supported-calendar-component")


def test_expand_weekly_with_exdate_and_override() -> None:
    out = Calendar.from_ical(ical.expand(WEEKLY_WITH_EXCEPTIONS, utc(2024, 1, 1), utc(2024, 1, 20)))
    events = out.walk("VEVENT")
    assert not out.walk("VTIMEZONE")
    starts = [e["DTSTART"].dt for e in events]
    # Jan 1 kept, Jan 8 excluded, Jan 15 moved to Jan 16 14:00 local.
    assert starts == [utc(2024, 1, 1, 2), utc(2024, 1, 16, 7)]
    rids = [e["RECURRENCE-ID"].dt for e in events]
    assert rids == [utc(2024, 1, 1, 2), utc(2024, 1, 15, 2)]
    for e in events:
        assert "RRULE" not in e and "EXDATE" not in e
        assert e["DTSTART"].dt.tzinfo is not None and e["DTSTART"].dt.utcoffset() == timedelta(0)
    assert str(events[1]["SUMMARY"]) == "Họp giao ban (dời)"


def test_limit_recurrence_set_keeps_master_and_relevant_overrides() -> None:
    inside = Calendar.from_ical(ical.limit_recurrence_set(
        WEEKLY_WITH_EXCEPTIONS, utc(2024, 1, 14), utc(2024, 1, 17)))
    assert len(inside.walk("VEVENT")) == 2
    outside = Calendar.from_ical(ical.limit_recurrence_set(
        WEEKLY_WITH_EXCEPTIONS, utc(2024, 1, 20), utc(2024, 2, 1)))
    (master,) = outside.walk("VEVENT")
    assert "RRULE" in master


def test_busy_periods_respect_transp_status_and_tentative() -> None:
    body = ics("""
BEGIN:VEVENT
UID:x
DTSTAMP:20240101T000000Z
DTSTART:20240110T020000Z
DTEND:20240110T030000Z
RRULE:FREQ=DAILY;COUNT=3
END:VEVENT
BEGIN:VEVENT
UID:x
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240111T020000Z
DTSTART:20240111T020000Z
DTEND:20240111T030000Z
STATUS:TENTATIVE
END:VEVENT
BEGIN:VEVENT
UID:x
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240112T020000Z
DTSTART:20240112T020000Z
DTEND:20240112T030000Z
STATUS:CANCELLED
END:VEVENT
""")
    periods = ical.busy_periods(body, utc(2024, 1, 10, 2, 30), utc(2024, 1, 20))
    assert sorted(periods) == [
        BusyPeriod(utc(2024, 1, 10, 2, 30), utc(2024, 1, 10, 3), "BUSY"),  # clipped
        BusyPeriod(utc(2024, 1, 11, 2), utc(2024, 1, 11, 3), "BUSY-TENTATIVE"),
    ]
    transparent = ics("""
BEGIN:VEVENT
UID:t
DTSTAMP:20240101T000000Z
DTSTART:20240110T020000Z
DTEND:20240110T030000Z
TRANSP:TRANSPARENT
END:VEVENT
""")
    assert ical.busy_periods(transparent, utc(2024, 1, 1), utc(2024, 2, 1)) == []


def test_vfreebusy_response_merges_periods() -> None:
    periods = [
        BusyPeriod(utc(2024, 1, 10, 2), utc(2024, 1, 10, 3)),
        BusyPeriod(utc(2024, 1, 10, 2, 30), utc(2024, 1, 10, 4)),
        BusyPeriod(utc(2024, 1, 10, 3, 30), utc(2024, 1, 10, 5), "BUSY-TENTATIVE"),
        BusyPeriod(utc(2024, 1, 11, 2), utc(2024, 1, 11, 3), "BUSY-TENTATIVE"),
    ]
    data = ical.vfreebusy_response(periods, utc(2024, 1, 10), utc(2024, 1, 12),
                                   dtstamp=FIXED_NOW)
    text = data.decode().replace("\r\n ", "")
    assert "FREEBUSY;FBTYPE=BUSY:20240110T020000Z/20240110T040000Z\r\n" in text
    assert ("FREEBUSY;FBTYPE=BUSY-TENTATIVE:20240110T040000Z/20240110T050000Z,"
            "20240111T020000Z/20240111T030000Z") in text
    fb = Calendar.from_ical(data).walk("VFREEBUSY")[0]
    assert fb["DTSTART"].dt == utc(2024, 1, 10) and fb["DTEND"].dt == utc(2024, 1, 12)


def test_redact_private_keeps_time_only() -> None:
    body = ics("""
BEGIN:VEVENT
UID:private-1
DTSTAMP:20240101T000000Z
DTSTART:20240110T020000Z
DTEND:20240110T030000Z
RRULE:FREQ=WEEKLY;COUNT=2
CLASS:CONFIDENTIAL
SUMMARY:Họp kỷ luật cán bộ
DESCRIPTION:Nội dung mật
LOCATION:Phòng 301
ATTENDEE:mailto:a@hanoi.gov.vn
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT10M
DESCRIPTION:nhắc
END:VALARM
END:VEVENT
""")
    out = Calendar.from_ical(ical.redact_private(body))
    (event,) = out.walk("VEVENT")
    assert str(event["SUMMARY"]) == "Bận"
    for gone in ("DESCRIPTION", "LOCATION", "ATTENDEE"):
        assert gone not in event
    assert not event.subcomponents
    assert "RRULE" in event and str(event["UID"]) == "private-1"
    public = ics("BEGIN:VEVENT\nUID:p\nDTSTART:20240101T000000Z\nSUMMARY:Công khai\nEND:VEVENT")
    assert "Công khai" in ical.redact_private(public).decode()


def test_tests_directory_does_not_shadow_stdlib_calendar() -> None:
    # tests/calendar/ must never hide the standard module that email imports.
    import importlib.machinery
    import sys

    spec = importlib.machinery.PathFinder.find_spec("calendar", sys.path)
    assert spec is not None and spec.origin is not None
    assert spec.origin.endswith("calendar.py") and "tests" not in spec.origin
    import email.utils  # noqa: F401  (imports calendar)
