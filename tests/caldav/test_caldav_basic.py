"""CalDAV basics over HTTP: discovery, PUT/GET/DELETE, PROPFIND, MKCALENDAR, PROPPATCH."""

from __future__ import annotations

import re

from conftest import AN, THU, event


async def test_smoke(dav) -> None:
    r = await dav.request("PROPFIND", "/dav/", Depth="0")
    assert r.status_code == 207, r.text
    assert "/dav/principals/users/an.nv@hanoi.gov.vn/" in r.text
    r = await dav.request("PUT", "/dav/calendars/users/an.nv@hanoi.gov.vn/calendar/a.ics",
                          body=event("a"), Content_Type="text/calendar")
    assert r.status_code == 201, r.text
    assert r.headers["etag"]
    r = await dav.request("GET", "/dav/calendars/users/an.nv@hanoi.gov.vn/calendar/a.ics")
    assert r.status_code == 200 and "UID:a" in r.text
    r = await dav.request("PROPFIND", "/dav/calendars/users/an.nv@hanoi.gov.vn/calendar/",
                          Depth="1")
    assert r.status_code == 207 and "a.ics" in r.text, r.text
    r = await dav.request("PUT", "/dav/calendars/users/an.nv@hanoi.gov.vn/calendar/b.ics",
                          user=THU, body=event("b"))
    assert r.status_code == 201, r.text
    _ = AN


def week_query(start: str, end: str) -> bytes:
    return ('<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>").encode()


async def test_time_range_from_indexed_instances(dav) -> None:
    """Recurring events are decided from their stored instances: EXDATE and a
    moved occurrence are honoured, as are zero-length and unbounded events."""
    cal = f"/dav/calendars/users/{AN}/calendar/"
    series = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:s\r\n"
        b"DTSTAMP:20261101T000000Z\r\nDTSTART:20261102T020000Z\r\nDTEND:20261102T030000Z\r\n"
        b"RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE:20261109T020000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20261101T000000Z\r\nRECURRENCE-ID:20261116T020000Z\r\n"
        b"DTSTART:20261128T020000Z\r\nDTEND:20261128T030000Z\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n")
    assert (await dav.request("PUT", cal + "s.ics", body=series)).status_code == 201
    await dav.request("PUT", cal + "zero.ics", body=event("zero", "20261110T050000Z",
                                                             "20261110T050000Z"))
    await dav.request("PUT", cal + "forever.ics", body=event(
        "forever", "20260105T010000Z", "20260105T020000Z", "RRULE:FREQ=MONTHLY\r\n"))

    async def hits(start: str, end: str) -> set[str]:
        r = await dav.request("REPORT", cal, body=week_query(start, end), Depth="1")
        assert r.status_code == 207
        return {h.rsplit("/", 1)[-1] for h in re.findall(r"<D:href>([^<]*)</D:href>", r.text)}

    assert await hits("20261102T000000Z", "20261103T000000Z") == {"s.ics"}
    assert await hits("20261109T000000Z", "20261110T000000Z") == set()  # EXDATE
    assert await hits("20261110T050000Z", "20261110T060000Z") == {"zero.ics"}
    assert await hits("20261116T000000Z", "20261117T000000Z") == set()  # moved away
    assert await hits("20261128T000000Z", "20261129T000000Z") == {"s.ics"}  # moved here
    assert await hits("20261205T000000Z", "20261206T000000Z") == {"forever.ics"}
