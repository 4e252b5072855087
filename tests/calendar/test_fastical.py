"""fastical (the simple-body reader) against the full icalendar path, field by field.

For every body of a broad corpus — generated variants, the CalDAV bench's
events, the bodies the other calendar/CalDAV tests send, and random
mutations of all of them — the fast reader either gives up (None) or returns
exactly the `CalendarObject` the full path returns, and the instance spans
`objects.recurring_spans` indexes are those of the full expansion. The
common shapes must actually take the fast path (so these tests fail if it
silently stops working), and bad bodies still get the full path's errors.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

from congvu.calendar import fastical, ical, icaltime, objects

ROOT = Path(__file__).resolve().parents[2]
# the CalDAV bench's own event bodies (bench/ is no package)
_spec = importlib.util.spec_from_file_location("caldav_load", ROOT / "bench" / "caldav_load.py")
assert _spec is not None and _spec.loader is not None
caldav_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(caldav_load)

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
ZONES: list[tuple[tzinfo, str]] = [
    (UTC, "UTC"),
    (ZoneInfo("Asia/Ho_Chi_Minh"), "Asia/Ho_Chi_Minh"),
    (ZoneInfo("America/New_York"), "America/New_York"),
]
VN = ZONES[1]


def slow(body: bytes | str, tz: tzinfo = UTC, key: str = "UTC",
         supported: tuple[str, ...] = ical.OBJECT_TYPES) -> ical.CalendarObject:
    """The full icalendar path alone."""
    with mock.patch.object(ical, "parse_simple", lambda *a, **k: None):
        return ical.parse_calendar_object(body, now=lambda: NOW, floating_tz=tz,
                                          floating_key=key, supported=supported)


def full_spans(obj: ical.CalendarObject) -> tuple[tuple[datetime, datetime], ...] | None:
    """`objects.recurring_spans` as it was: parse ``data`` again, expand it all."""
    if not obj.is_recurring or obj.component != "VEVENT" or obj.last_end is None:
        return None
    cal = ical.load_calendar(obj.data)
    spans = []
    for inst in icaltime.instances(cal, "VEVENT", None, None, obj.floating_tz):
        span = icaltime.event_span(inst, obj.floating_tz)
        if span is None:
            continue
        spans.append((span.start, span.end))
        if len(spans) > objects.MAX_INDEXED_INSTANCES:
            return None
    return tuple(spans)


def outcome(fn: object, *args: object) -> object:
    """A call's result, or the class and text of what it raised (both paths must agree)."""
    try:
        return fn(*args)  # type: ignore[operator]
    except Exception as exc:
        return Raised(type(exc), str(exc))


@dataclasses.dataclass(frozen=True)
class Raised:
    kind: type
    text: str


def same_value(a: object, b: object) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b and a.utcoffset() == b.utcoffset() and type(a) is type(b)
    return a == b and type(a) is type(b)


def check(body: bytes | str, tz: tzinfo = UTC, key: str = "UTC",
          supported: tuple[str, ...] = ical.OBJECT_TYPES) -> ical.CalendarObject | None:
    """Assert fast == full for ``body``; return the fast result (None: it gave up)."""
    fast = fastical.parse_simple(body, floating_tz=tz, floating_key=key, supported=supported)
    try:
        want = slow(body, tz, key, supported)
    except Exception as exc:  # any error must still come from the full path
        assert fast is None, f"fast path accepted a body the full path rejects: {exc!r}"
        with pytest.raises(type(exc)) as got:
            ical.parse_calendar_object(body, now=lambda: NOW, floating_tz=tz,
                                       floating_key=key, supported=supported)
        assert str(got.value) == str(exc)
        return None
    hooked = ical.parse_calendar_object(body, now=lambda: NOW, floating_tz=tz,
                                        floating_key=key, supported=supported)
    if fast is None:
        assert hooked == want
        assert outcome(objects.recurring_spans, hooked) == outcome(full_spans, want)
        return None
    for f in dataclasses.fields(ical.CalendarObject):
        if f.compare:
            assert same_value(getattr(fast, f.name), getattr(want, f.name)), (
                f.name, getattr(fast, f.name), getattr(want, f.name), body)
    assert fast == want and hooked == want
    spans = outcome(full_spans, want)
    assert outcome(objects.recurring_spans, fast) == spans, body
    assert outcome(objects.recurring_spans, want) == spans, body  # the kept Calendar
    if isinstance(spans, tuple):
        for (s1, e1), (s2, e2) in zip(objects.recurring_spans(fast) or (), spans, strict=True):
            assert s1.utcoffset() == s2.utcoffset() and e1.utcoffset() == e2.utcoffset()
    return fast


# --- the corpus -----------------------------------------------------------------

def cal(*lines: str, vtimezone: str = "", head: str = "") -> bytes:
    body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + head + vtimezone
            + "".join(line + "\r\n" for line in lines) + "END:VCALENDAR\r\n")
    return body.encode()


def comp(kind: str, *props: str, uid: str = "u-1@test", stamp: bool = True) -> list[str]:
    out = [f"BEGIN:{kind}", f"UID:{uid}"]
    if stamp:
        out.append("DTSTAMP:20261101T000000Z")
    return [*out, *props, f"END:{kind}"]


VTZ_VN = ("BEGIN:VTIMEZONE\r\nTZID:Asia/Ho_Chi_Minh\r\nX-LIC-LOCATION:Asia/Ho_Chi_Minh\r\n"
          "BEGIN:STANDARD\r\nTZOFFSETFROM:+0700\r\nTZOFFSETTO:+0700\r\nTZNAME:+07\r\n"
          "DTSTART:19700101T000000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n")
VTZ_NY = ("BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nLAST-MODIFIED:20050809T050000Z\r\n"
          "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n"
          "DTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n"
          "BEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\n"
          "DTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\n"
          "END:VTIMEZONE\r\n")

STARTS = {
    "utc": ("DTSTART:20260306T020000Z", "DTEND:20260306T033000Z"),
    "vn": ("DTSTART;TZID=Asia/Ho_Chi_Minh:20260306T090000",
           "DTEND;TZID=Asia/Ho_Chi_Minh:20260306T103000"),
    # the week before the spring-forward (2026-03-08) and across the fall-back
    "ny": ("DTSTART;TZID=America/New_York:20260302T013000",
           "DTEND;TZID=America/New_York:20260302T023000"),
    "ny-fall": ("DTSTART;TZID=America/New_York:20261025T013000",
                "DTEND;TZID=America/New_York:20261025T030000"),
    "ny-gap": ("DTSTART;TZID=America/New_York:20260308T023000",
               "DTEND;TZID=America/New_York:20260308T033000"),
    "day": ("DTSTART;VALUE=DATE:20260306", "DTEND;VALUE=DATE:20260307"),
    "day-bare": ("DTSTART:20260306", "DTEND:20260308"),
    "floating": ("DTSTART:20260306T090000", "DTEND:20260306T100000"),
    "mixed": ("DTSTART;TZID=America/New_York:20260306T090000", "DTEND:20260306T160000Z"),
}
ENDS = ("dtend", "duration", "duration-day", "none", "zero")
RULES = (
    "", "RRULE:FREQ=WEEKLY;COUNT=10", "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=5",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12", "RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=6",
    "RRULE:FREQ=WEEKLY;UNTIL=20260501T000000Z", "RRULE:FREQ=DAILY;UNTIL=20260320",
    "RRULE:FREQ=WEEKLY;UNTIL=20260501T000000", "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=4",
    "RRULE:FREQ=YEARLY;COUNT=3", "RRULE:FREQ=WEEKLY", "RRULE:FREQ=DAILY;COUNT=1200",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;WKST=SU;COUNT=8",
    "RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20270101T000000Z",
    "RRULE:FREQ=DAILY;COUNT=3;UNTIL=20260320T000000Z",
)


def event_variants() -> Iterator[bytes]:
    for sname, (start, end) in STARTS.items():
        for ename in ENDS:
            props = [start]
            if ename == "dtend":
                props.append(end)
            elif ename == "duration":
                props.append("DURATION:PT1H30M")
            elif ename == "duration-day":
                props.append("DURATION:P1D")
            elif ename == "zero":
                props.append(start.replace("DTSTART", "DTEND"))
            for rule in RULES:
                lines = comp("VEVENT", *props, *([rule] if rule else []),
                             "SUMMARY:Họp giao ban")
                vtz = VTZ_NY if "ny" in sname else VTZ_VN if sname == "vn" else ""
                yield cal(*lines)
                if vtz and rule in RULES[:2]:
                    yield cal(*lines, vtimezone=vtz)


TEXTS = (
    "Họp giao ban tuần",
    r"Giao ban\, tổng kết\; kế hoạch \\ mục 1\nmục 2\Nmục 3",
    r"URL: http\://x.vn a\xb \" trích dẫn",
    "Hội nghị " + "sơ kết công tác cải cách hành chính " * 6,
    "",
    " khoảng trắng ",
)


def fold(line: str, width: int = 75) -> str:
    """Fold a content line at ``width`` octets, never inside a UTF-8 sequence."""
    out, cur = [], ""
    for ch in line:
        if len((cur + ch).encode()) > width:
            out.append(cur)
            cur = " "
        cur += ch
    out.append(cur)
    return "\r\n".join(out)


def text_variants() -> Iterator[bytes]:
    for text in TEXTS:
        for folded in (False, True):
            summary = fold("SUMMARY:" + text) if folded else "SUMMARY:" + text
            yield cal(*comp("VEVENT", *STARTS["utc"], summary,
                            fold("DESCRIPTION:" + text * 3),
                            "LOCATION;LANGUAGE=vi:Phòng họp số 1\\, tầng 2",
                            'DESCRIPTION;ALTREP="cid:part1@example.org":x'
                            if not folded else "COMMENT:a"))
    # a fold in the middle of an escape and of a UTF-8 word
    yield cal(*comp("VEVENT", *STARTS["utc"], "SUMMARY:Giao ban\\\r\n ,tổ\r\n\tng kết"))
    yield cal(*comp("VEVENT", *STARTS["utc"], "UID:dup@test"))
    yield cal(*comp("VEVENT", *STARTS["utc"], uid=r"a\,b\;c@test"))
    yield cal(*comp("VEVENT", *STARTS["utc"], uid="   "))
    yield cal(*comp("VEVENT", *STARTS["utc"], uid="x" * 240))
    yield cal(*comp("VEVENT", *STARTS["utc"], "SUMMARY:a", "SUMMARY:b"))


ATTENDEES = (
    ["ORGANIZER;CN=An:mailto:an@x.vn", "ATTENDEE;PARTSTAT=ACCEPTED:mailto:b@x.vn"],
    ['ORGANIZER;CN="Nguyễn Văn An";SENT-BY="mailto:thu.ky@x.vn":MAILTO:An@X.vn',
     'ATTENDEE;CN="Lê, Thị Thu";ROLE=REQ-PARTICIPANT;PARTSTAT=needs-action;RSVP=TRUE'
     ':mailto:thu@x.vn',
     "ATTENDEE;CN=Bình;RSVP=true;SCHEDULE-AGENT=client:mailto:binh@x.vn",
     "ATTENDEE;CUTYPE=ROOM;PARTSTAT=TENTATIVE;RSVP=FALSE:mailto:phong-hop-1@x.vn",
     'ATTENDEE;DELEGATED-TO="mailto:a@x.vn","mailto:b@x.vn";PARTSTAT=DELEGATED'
     ":mailto:c@x.vn",
     "ATTENDEE;CN=a,b;X-NUM=1:mailto:d@x.vn",
     "ATTENDEE:urn:uuid:8f1f0000-0000-4000-8000-000000000001",
     "ATTENDEE;SCHEDULE-STATUS=2.0;EMAIL=e@x.vn:mailto:e@x.vn"],
    ["ORGANIZER:mailto:an@x.vn", "ORGANIZER:mailto:other@x.vn",
     "ATTENDEE:mailto:a\\b@x.vn", "ATTENDEE;CN=\"x\":mailto:a\\,b@x.vn"],
    ["ATTENDEE;CN=\"Nguyễn ^'An^'\":mailto:an@x.vn"],
    [fold("ATTENDEE;CN=\"" + "Phó Chủ tịch Ủy ban nhân dân thành phố " * 2
          + "\";PARTSTAT=ACCEPTED:mailto:pct@hanoi.gov.vn")],
    ["ORGANIZER:"], ["ATTENDEE;PARTSTAT=:mailto:x@x.vn"],
    ["ATTENDEE;CN=Trần Văn  Cường;PARTSTAT=ACCEPTED:mailto:c@x.vn",
     "ATTENDEE;CN=An ;PARTSTAT = ACCEPTED:mailto:an@x.vn",
     "ATTENDEE;CN= An:mailto:an2@x.vn"],
)


def misc_variants() -> Iterator[bytes]:
    utc = STARTS["utc"]
    for klass in ("", "PUBLIC", "private", "CONFIDENTIAL", "X-SECRET", "Public"):
        yield cal(*comp("VEVENT", *utc, *([f"CLASS:{klass}"] if klass else [])))
    for seq in ("0", "3", "007", "-1", "x", "1.5", "+2"):
        yield cal(*comp("VEVENT", *utc, f"SEQUENCE:{seq}"))
    alarm = ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "DESCRIPTION:Nhắc",
             "END:VALARM"]
    yield cal(*comp("VEVENT", *utc, *alarm))
    yield cal(*comp("VEVENT", *utc, "BEGIN:VALARM", "ACTION:DISPLAY",
                    "TRIGGER;VALUE=DATE-TIME:20260306T013000Z", "END:VALARM"))
    yield cal(*comp("VEVENT", *utc, "BEGIN:VALARM", "ACTION:DISPLAY",
                    "TRIGGER;RELATED=END:PT0S", "REPEAT:2", "DURATION:PT5M", "END:VALARM"))
    yield cal(*comp("VEVENT", *utc, "BEGIN:VALARM", "TRIGGER:soon", "END:VALARM"))
    yield cal(*comp("VEVENT", *utc, "CATEGORIES:Họp,Công tác", "URL:https://x.vn/a?b=c",
                    "X-MOZ-GENERATION:3", "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR;X-A=1:AUTOMATIC",
                    "TRANSP:OPAQUE", "STATUS:CONFIRMED", "PRIORITY:5", "GEO:21.02;105.83",
                    "CREATED:20260101T000000Z", "LAST-MODIFIED:20260102T000000Z"))
    yield cal(*comp("VEVENT", *utc, "GEO:north"))
    yield cal(*comp("VEVENT", *utc, "CREATED:yesterday"))
    yield cal(*comp("VEVENT", *utc, "X-BAD;VALUE=DATE:soon"))
    yield cal(*comp("VEVENT", *utc), head="X-WR-CALNAME:Lịch\r\nCALSCALE:GREGORIAN\r\n")
    yield cal(*comp("VEVENT", *utc), head="CALSCALE:JULIAN\r\n")
    yield cal(*comp("VEVENT", *utc), head="X-WR-TIMEZONE:Asia/Ho_Chi_Minh\r\n")
    yield cal(*comp("VEVENT", *utc), head="METHOD:REQUEST\r\n")
    yield cal(*comp("VEVENT", *utc, "ORGANIZER;CN=An:mailto:an@x.vn",
                    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:b@x.vn"))
    for people in ATTENDEES:
        yield cal(*comp("VEVENT", *utc, *people))
        yield cal(*comp("VTODO", "DUE:20260310T100000Z", *people))
    yield cal(*comp("VEVENT", *utc, "BEGIN:VALARM", "ACTION:EMAIL", "TRIGGER:-PT1H",
                    "SUMMARY:Nhắc", "DESCRIPTION:x", "ATTENDEE:mailto:an@x.vn", "END:VALARM"))
    yield cal(*comp("VEVENT", *utc, "RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20260313T020000Z"))
    for exdates in (["EXDATE:20260313T020000Z,20260320T020000Z"],
                    ["EXDATE:20260313T020000Z", "EXDATE:20260320T090000"],
                    ["EXDATE;TZID=Asia/Ho_Chi_Minh:20260313T090000"],
                    ["EXDATE;TZID=America/New_York:20260313T090000,20260320T090000"],
                    ["EXDATE;TZID=Nowhere/City:20260313T090000"],
                    ["EXDATE;VALUE=DATE:20260313"], ["EXDATE:20260313"], ["EXDATE:soon"],
                    ["EXDATE:"], ["EXDATE;VALUE=PERIOD:20260313T020000Z/PT1H"]):
        for start in (STARTS["utc"], STARTS["vn"], STARTS["day"], STARTS["floating"]):
            yield cal(*comp("VEVENT", *start, "RRULE:FREQ=WEEKLY;COUNT=4", *exdates))
        yield cal(*comp("VEVENT", *utc, *exdates))
    yield cal(*comp("VEVENT", *utc, "RRULE:FREQ=WEEKLY;COUNT=3", "RDATE:20260401T020000Z"))
    yield cal(*comp("VEVENT", *utc, "RRULE:FREQ=WEEKLY;COUNT=3"),
              *comp("VEVENT", "RECURRENCE-ID:20260313T020000Z", "DTSTART:20260313T050000Z"))
    yield cal(*comp("VEVENT", "DTSTART;TZID=Nowhere/City:20260306T090000"))
    yield cal(*comp("VEVENT", "DTSTART;TZID=Asia/Saigon:20260306T090000"))
    yield cal(*comp("VEVENT", 'DTSTART;TZID="Asia/Ho_Chi_Minh":20260306T090000'))
    yield cal(*comp("VEVENT", "DTSTART;TZID=Asia/Ho_Chi_Minh;TZID=America/New_York:"
                    "20260306T090000"))
    yield cal(*comp("VEVENT", "DTSTART;VALUE=DATE;VALUE=DATE-TIME:20260306T090000"))
    yield cal(*comp("VEVENT", "DTSTART;TZID=/mozilla.org/20070129_1/Asia/Ho_Chi_Minh:"
                    "20260306T090000"))
    yield cal(*comp("VEVENT", *utc, "RRULE:FREQ=WEEKLY;COUNT=3"),
              vtimezone="BEGIN:VTIMEZONE\r\nTZID:Custom Zone\r\nBEGIN:STANDARD\r\n"
              "TZOFFSETFROM:+0700\r\nTZOFFSETTO:+0700\r\nDTSTART:19700101T000000\r\n"
              "END:STANDARD\r\nEND:VTIMEZONE\r\n")
    # VTODO
    for props in ([], ["DUE:20260310T100000Z"], ["DTSTART:20260306T020000Z", "DUE:20260310T100000Z"],
                  ["DTSTART:20260306T020000Z", "DURATION:P2D"], ["DUE;VALUE=DATE:20260310"],
                  ["DUE;TZID=America/New_York:20260310T170000"], ["CREATED:20260101T000000Z"],
                  ["COMPLETED:20260105T000000Z", "CREATED:20260101T000000Z", "STATUS:COMPLETED"],
                  ["DTSTART:20260306T020000Z", "RRULE:FREQ=WEEKLY;COUNT=4", "DUE:20260306T100000Z"],
                  ["DTSTART:20260306T020000Z", "DTEND:20260306T030000Z"],
                  ["PERCENT-COMPLETE:40", "DUE:20260310"]):
        yield cal(*comp("VTODO", *props, "SUMMARY:Theo dõi sau họp"))
    yield cal(*comp("VJOURNAL", "DTSTART:20260306T020000Z"))
    # errors the full path raises
    yield cal(*comp("VEVENT", *utc, "DURATION:PT1H"))
    yield cal(*comp("VEVENT", "DTSTART:20261306T020000Z"))
    yield cal(*comp("VEVENT", "DTSTART:PT1H"))
    yield cal(*comp("VEVENT", "SUMMARY:no start"))
    yield cal(*comp("VEVENT", *utc, stamp=False))
    yield cal(*comp("VEVENT", *utc, "DTSTAMP:20261101T000000Z"))
    yield cal(*comp("VEVENT", *utc), *comp("VTODO", "DUE:20260310T100000Z"))
    yield cal(*comp("VEVENT", *utc), *comp("VEVENT", *utc))
    yield cal(*comp("VEVENT", *utc), *comp("VEVENT", *utc, uid="other"))
    yield cal()
    yield cal("BEGIN:VEVENT", "END:VTODO")
    yield b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n"
    yield b"not a calendar"
    yield b""
    good = cal(*comp("VEVENT", *utc))
    yield b"\xef\xbb\xbf" + good
    yield good.replace(b"\r\n", b"\n")
    yield good[:-2]
    yield good + good
    yield good.replace(b"VERSION:2.0\r\n", b"")
    yield good.replace(b"PRODID:-//test//EN\r\n", b"")
    yield good.replace(b"UID", b"uid")
    yield good.replace(b"BEGIN:VEVENT", b"BEGIN:vevent")
    yield good.replace("Họp".encode(), "Họp".encode("latin-1", "replace"))
    yield good.replace(b"DTSTAMP:", b"DTSTAMP;X-P=\"a:b\":")
    yield good.replace(b"DTSTAMP:", b"DTSTAMP ;X-P=1:")
    yield good.replace(b"END:VCALENDAR", b"X-COMMENT:after\r\nEND:VCALENDAR")
    yield good.replace(b"\r\nEND:VEVENT", b"\r\n\r\nEND:VEVENT")
    yield good.decode().replace("SUMMARY", "SUMMARY").encode() + b"X-COMMENT:x\r\n"


def suite_bodies() -> Iterator[bytes]:
    """Every VCALENDAR literal in the calendar and CalDAV tests, plus their builders."""
    sys.path.insert(0, str(ROOT))
    from tests.caldav import conftest as dav_conftest
    from tests.caldav import sched_helpers

    for path in sorted([*(ROOT / "tests/calendar").glob("*.py"),
                        *(ROOT / "tests/caldav").glob("*.py")]):
        if path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                text = node.value.decode() if isinstance(node.value, bytes) else node.value
                if "BEGIN:VCALENDAR" in text:
                    yield text.encode()
                    yield text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
                elif "BEGIN:VEVENT" in text or "BEGIN:VTODO" in text:
                    yield ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + text.strip()
                           + "\nEND:VCALENDAR\n").replace("\n", "\r\n").encode()
    yield dav_conftest.event("t-1")
    yield dav_conftest.event("t-2", "20261201", "20261202")
    yield dav_conftest.event("t-3", extra="RRULE:FREQ=DAILY;COUNT=5\r\n")
    yield sched_helpers.ics("s-1", [sched_helpers.THU])
    yield sched_helpers.ics("s-2", [], comp="VTODO")


def bench_bodies() -> list[bytes]:
    return [caldav_load.event(i) for i in range(41)]


def corpus() -> list[bytes]:
    return [*event_variants(), *text_variants(), *misc_variants(), *suite_bodies(),
            *bench_bodies()]


def mutate(body: bytes, rnd: random.Random) -> bytes:
    lines = body.split(b"\r\n")
    i = rnd.randrange(len(lines))
    choice = rnd.randrange(9)
    if choice == 0:
        del lines[i]
    elif choice == 1:
        lines.insert(i, lines[rnd.randrange(len(lines))])
    elif choice == 2:
        lines[i] = lines[i].lower()
    elif choice == 3 and lines[i]:
        j = rnd.randrange(len(lines[i]))
        lines[i] = lines[i][:j] + rnd.choice([b":", b";", b",", b"\\", b'"', b" ", b"=",
                                              b"\r\n ", b"Z", b"0", b"^"]) + lines[i][j:]
    elif choice == 4 and lines[i]:
        j = rnd.randrange(len(lines[i]))
        lines[i] = lines[i][:j] + lines[i][j + 1:]
    elif choice == 5:
        lines.insert(i, rnd.choice([b"RRULE:FREQ=DAILY;COUNT=2", b"DURATION:PT1H", b"DUE:20260310",
                                    b"DTEND;VALUE=DATE:20260301", b"CLASS:PRIVATE",
                                    b"BEGIN:VALARM", b"END:VALARM", b"SEQUENCE:9",
                                    b"DTSTART;TZID=Europe/Berlin:20260329T023000",
                                    b"X-A;B=\"c,d\":e", b"DESCRIPTION;X=\"a\":b"]))
    elif choice == 6:
        lines[i] = lines[i].replace(b"Z", b"")
    elif choice == 7:
        lines[i] = lines[i].replace(b"T0", b"T2")
    else:
        lines[i] = lines[i].replace(b":", b";X=1:", 1)
    return b"\r\n".join(lines)


# --- the tests --------------------------------------------------------------------

CORPUS = corpus()


@pytest.mark.parametrize("zone", ZONES, ids=[k for _, k in ZONES])
def test_corpus_fast_equals_full(zone: tuple[tzinfo, str]) -> None:
    taken = sum(check(body, *zone) is not None for body in CORPUS)
    # most of the corpus is the simple shape
    assert taken > len(CORPUS) // 3, (taken, len(CORPUS))


def test_supported_components_are_respected() -> None:
    todo = cal(*comp("VTODO", "DUE:20260310T100000Z"))
    assert check(todo, supported=("VEVENT",)) is None
    assert check(todo, supported=("VTODO",)) is not None
    with pytest.raises(ical.UnsupportedComponent, match="VTODO"):
        ical.parse_calendar_object(todo, supported=("VEVENT",))


def test_mutations_fast_equals_full() -> None:
    rnd = random.Random(5)
    bases = [b for b in CORPUS if fastical.parse_simple(b) is not None]
    taken = 0
    for _ in range(1500):
        body = rnd.choice(bases)
        for _ in range(rnd.randrange(1, 3)):
            body = mutate(body, rnd)
        tz, key = rnd.choice(ZONES)
        taken += check(body, tz, key) is not None
    assert taken > 100


def test_bench_events_take_the_fast_paths() -> None:
    for i, body in enumerate(bench_bodies()):
        fast = check(body, *VN)
        assert fast is not None, i
        if i % 20 == 0:
            assert fast.is_recurring and isinstance(fast.series, fastical.Series)
            assert fast.series.occurrences is not None  # the rule was iterated once
            spans = fastical.series_spans(fast.series, VN[0], objects.MAX_INDEXED_INSTANCES)
            assert isinstance(spans, tuple) and len(spans) == 10
            assert spans[0][0] == caldav_load.BASE + i * caldav_load.STEP
            assert spans[-1][1] == spans[0][1] + timedelta(weeks=9)


@pytest.mark.parametrize("body", [
    cal(*comp("VEVENT", *STARTS["utc"], "SUMMARY:x")),
    cal(*comp("VEVENT", *STARTS["vn"], "RRULE:FREQ=WEEKLY;COUNT=10")),
    cal(*comp("VEVENT", *STARTS["ny"], "RRULE:FREQ=WEEKLY;UNTIL=20260501T000000Z"),
        vtimezone=VTZ_NY),
    cal(*comp("VEVENT", *STARTS["day"], "RRULE:FREQ=DAILY;UNTIL=20260320")),
    cal(*comp("VEVENT", STARTS["floating"][0], "DURATION:PT45M",
              "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VALARM")),
    cal(*comp("VTODO", "DUE:20260310T100000Z", "CLASS:CONFIDENTIAL", "SEQUENCE:2")),
    cal(*comp("VTODO", "SUMMARY:không hạn")),
])
def test_common_shapes_take_the_fast_path(body: bytes) -> None:
    for zone in ZONES:
        fast = check(body, *zone)
        assert fast is not None
        if fast.is_recurring and fast.component == "VEVENT":
            assert isinstance(fast.series, fastical.Series)
            assert fastical.series_spans(fast.series, zone[0], 1000) is not False


def test_vtimezone_with_two_tzids_is_a_400() -> None:
    body = cal(*comp("VEVENT", *STARTS["vn"]),
               vtimezone=VTZ_VN.replace("TZID:Asia/Ho_Chi_Minh\r\n",
                                        "TZID:Asia/Ho_Chi_Minh\r\n" * 2))
    assert check(body) is None  # (icalendar itself raised AttributeError: a 500 before)
    with pytest.raises(ical.InvalidCalendarData, match="cannot parse iCalendar"):
        ical.parse_calendar_object(body)


@pytest.mark.parametrize("twice", ["DTSTART:20260306T100000Z", "DTEND:20260306T110000Z",
                                   "DURATION:PT2H"])
def test_a_repeated_time_property_is_a_400(twice: str) -> None:
    once = "DURATION:PT1H" if twice.startswith("DURATION") else "DTEND:20260306T100000Z"
    body = cal(*comp("VEVENT", "DTSTART:20260306T090000Z", once, twice,
                     "RRULE:FREQ=DAILY;COUNT=3"))
    assert check(body) is None  # (the full path indexed it, then failed expanding: a 500)
    with pytest.raises(ical.InvalidCalendarData, match="repeated"):
        ical.parse_calendar_object(body)


def test_fast_values() -> None:
    """A few facts spelled out, so both paths cannot drift together."""
    body = cal(*comp("VEVENT", *STARTS["ny"], fold(
        "SUMMARY:" + r"Giao ban\, tổng kết\; kế hoạch \\ mục 1\nmục 2 " * 3),
        "RRULE:FREQ=WEEKLY;COUNT=3", "CLASS:private"))
    fast = check(body)
    assert fast is not None and fast.data == body
    assert fast.summary == "Giao ban, tổng kết; kế hoạch \\ mục 1\nmục 2 " * 3
    assert fast.class_ == "PRIVATE" and fast.is_recurring and not fast.floating
    # 01:30 EST before the switch, then 01:30 EDT: wall time kept
    assert fast.first_start == datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    assert objects.recurring_spans(fast) == (
        (datetime(2026, 3, 2, 6, 30, tzinfo=UTC), datetime(2026, 3, 2, 7, 30, tzinfo=UTC)),
        (datetime(2026, 3, 9, 5, 30, tzinfo=UTC), datetime(2026, 3, 9, 6, 30, tzinfo=UTC)),
        (datetime(2026, 3, 16, 5, 30, tzinfo=UTC), datetime(2026, 3, 16, 6, 30, tzinfo=UTC)),
    )
    assert fast.last_end == datetime(2026, 3, 16, 6, 30, tzinfo=UTC)
