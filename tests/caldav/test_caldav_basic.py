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


CQ = ('<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
      "<D:prop><D:getetag/>{data}</D:prop><C:filter>{flt}</C:filter></C:calendar-query>")


async def test_filters_vtodo_expand_limit_and_freebusy(dav) -> None:
    cal = f"/dav/calendars/users/{AN}/calendar/"
    await dav.request("PUT", cal + "hop.ics", body=event(
        "hop", "20261207T020000Z", "20261207T030000Z",
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Lê Thị Thu:mailto:thu.lt@hanoi.gov.vn\r\n"
        "RRULE:FREQ=DAILY;COUNT=5\r\n", summary="Họp Sở TTTT"))
    await dav.request("PUT", cal + "khac.ics", body=event(
        "khac", "20261208T070000Z", "20261208T080000Z", summary="Tiếp dân"))
    todo = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:task\r\n"
            b"DTSTAMP:20261101T000000Z\r\nDUE:20261209T100000Z\r\nSUMMARY:Bao cao\r\n"
            b"STATUS:NEEDS-ACTION\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    assert (await dav.request("PUT", cal + "task.ics", body=todo)).status_code == 201

    async def query(flt: str, data: str = "") -> str:
        r = await dav.request("REPORT", cal, body=CQ.format(flt=flt, data=data).encode(),
                              Depth="1")
        assert r.status_code == 207, r.text
        return r.text

    # text-match is case- and (with i;unicode-casemap) Vietnamese-aware
    text = await query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
                       '<C:prop-filter name="SUMMARY"><C:text-match collation="i;unicode-casemap">'
                       "họp sở</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter>")
    assert "hop.ics" in text and "khac.ics" not in text
    text = await query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
                       '<C:prop-filter name="ATTENDEE"><C:param-filter name="PARTSTAT">'
                       "<C:text-match>ACCEPTED</C:text-match></C:param-filter></C:prop-filter>"
                       "</C:comp-filter></C:comp-filter>")
    assert "hop.ics" in text and "khac.ics" not in text
    text = await query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO">'
                       '<C:time-range start="20261209T000000Z" end="20261210T000000Z"/>'
                       "</C:comp-filter></C:comp-filter>")
    assert "task.ics" in text and "hop.ics" not in text
    # expand: each instance in the range as its own component with RECURRENCE-ID
    text = await query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
                       '<C:time-range start="20261208T000000Z" end="20261210T000000Z"/>'
                       "</C:comp-filter></C:comp-filter>",
                       '<C:calendar-data><C:expand start="20261208T000000Z" '
                       'end="20261210T000000Z"/></C:calendar-data>')
    assert text.count("RECURRENCE-ID") == 2 and "RRULE" not in text
    text = await query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
                       '<C:time-range start="20261208T000000Z" end="20261210T000000Z"/>'
                       "</C:comp-filter></C:comp-filter>",
                       '<C:calendar-data><C:limit-recurrence-set start="20261208T000000Z" '
                       'end="20261210T000000Z"/></C:calendar-data>')
    assert "RRULE:FREQ=DAILY;COUNT=5" in text
    r = await dav.request("REPORT", cal, Depth="1", body=(
        b'<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b'<C:time-range start="20261207T000000Z" end="20261209T000000Z"/></C:free-busy-query>'))
    assert r.status_code == 200 and "VFREEBUSY" in r.text
    assert "20261207T020000Z/20261207T030000Z" in r.text.replace("\r\n ", "")
    assert "Họp" not in r.text  # busy time only
