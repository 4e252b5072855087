"""HTTP transcripts of every CalDAV item in CLIENT-QUIRKS.md."""

from __future__ import annotations

import re

from conftest import AN, THU, event

CAL = f"/dav/calendars/users/{AN}/calendar/"
HOME = f"/dav/calendars/users/{AN}/"
PRINCIPAL = f"/dav/principals/users/{AN}/"

PROPFIND_CUP = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:">'
                b"<D:prop><D:current-user-principal/><D:resourcetype/></D:prop></D:propfind>")


def hrefs(text: str) -> list[str]:
    return re.findall(r"<D:href>([^<]*)</D:href>", text)


async def test_apple_discovery_walk(dav, services) -> None:
    r = await dav.request("GET", "/.well-known/caldav")
    assert r.status_code == 301 and r.headers["location"] == "/dav/"
    r = await dav.request("PROPFIND", "/.well-known/caldav", body=PROPFIND_CUP, Depth="0")
    assert r.status_code == 301
    for path in ("/dav/", PRINCIPAL, HOME, CAL):
        r = await dav.request("PROPFIND", path, body=PROPFIND_CUP, Depth="0")
        assert r.status_code == 207, (path, r.text)
        assert f"<D:current-user-principal><D:href>{PRINCIPAL}</D:href>" in r.text, path
    r = await dav.request("PROPFIND", PRINCIPAL, Depth="0", body=(
        b'<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
        b"<C:calendar-home-set/><C:calendar-user-address-set/><D:displayname/>"
        b"</D:prop></D:propfind>"))
    assert f"<C:calendar-home-set><D:href>{HOME}</D:href>" in r.text
    assert f"mailto:{AN}" in r.text and "Nguyễn Văn An" in r.text
    r = await dav.request("OPTIONS", PRINCIPAL)
    assert r.status_code == 200
    dav_header = r.headers["dav"]
    assert "calendar-access" in dav_header and "access-control" in dav_header
    # the home is a plain collection, calendars inside it end with "/"
    r = await dav.request("PROPFIND", HOME, body=PROPFIND_CUP, Depth="1")
    blocks = r.text.split("<D:response>")[1:]
    home_block = next(b for b in blocks if f"<D:href>{HOME}</D:href>" in b)
    assert "<C:calendar/>" not in home_block and "<D:collection/>" in home_block
    assert any(f"<D:href>{CAL}</D:href>" in b and "<C:calendar/>" in b for b in blocks)


async def test_brief_and_prefer_minimal_drop_404_blocks(dav) -> None:
    body = (b'<D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop><D:displayname/><X:nothing/>'
            b"</D:prop></D:propfind>")
    full = await dav.request("PROPFIND", CAL, body=body, Depth="0")
    assert "404 Not Found" in full.text
    for hdr in ({"Brief": "t"}, {"Prefer": "return-minimal"}):
        r = await dav.as_().request("PROPFIND", CAL, content=body, headers={"Depth": "0", **hdr})
        assert r.status_code == 207 and "404" not in r.text and "<D:displayname>" in r.text


async def test_apple_calendar_proxy(dav) -> None:
    # the organisation fixture: an.nv grants thu.lt calendar-write
    r = await dav.request("PROPFIND", f"{PRINCIPAL}calendar-proxy-write/", Depth="0", body=(
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:group-member-set/><D:resourcetype/>'
        b"</D:prop></D:propfind>"))
    assert r.status_code == 207
    assert f"/dav/principals/users/{THU}/" in r.text and "calendar-proxy-write" in r.text
    r = await dav.request("PROPFIND", f"{PRINCIPAL}calendar-proxy-read/", Depth="0", body=(
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:group-member-set/></D:prop></D:propfind>'))
    assert THU not in r.text
    r = await dav.request("PROPFIND", f"/dav/principals/users/{THU}/", user=THU, Depth="0", body=(
        b'<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop>'
        b"<CS:calendar-proxy-write-for/><CS:calendar-proxy-read-for/><D:group-membership/>"
        b"</D:prop></D:propfind>"))
    assert f"<CS:calendar-proxy-write-for><D:href>{PRINCIPAL}</D:href>" in r.text
    assert f"{PRINCIPAL}calendar-proxy-write/" in r.text
    # and the secretary reaches the leader's calendar home and writes to it
    r = await dav.request("PROPFIND", HOME, user=THU, body=PROPFIND_CUP, Depth="1")
    assert r.status_code == 207 and CAL in hrefs(r.text)
    r = await dav.request("PUT", CAL + "by-thu.ics", user=THU, body=event("by-thu"))
    assert r.status_code == 201


async def test_iphone_start_only_range_then_multiget(dav) -> None:
    for i, day in enumerate(("20261101", "20261210", "20270115")):
        await dav.request("PUT", f"{CAL}e{i}.ics", body=event(f"e{i}", f"{day}T010000Z",
                                                                f"{day}T020000Z"))
    query = (b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
             b"<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name=\"VCALENDAR\">"
             b'<C:comp-filter name="VEVENT"><C:time-range start="20261201T000000Z"/>'
             b"</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")
    r = await dav.request("REPORT", CAL, body=query, Depth="1")
    assert r.status_code == 207
    assert sorted(hrefs(r.text)) == [CAL + "e1.ics", CAL + "e2.ics"]
    assert r.text.count("<D:getetag>") == 2
    mg = (b'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
          b"<D:prop><D:getetag/><C:calendar-data/></D:prop>"
          + f"<D:href>{CAL}e1.ics</D:href><D:href>{CAL}missing.ics</D:href>".encode()
          + b"</C:calendar-multiget>")
    r = await dav.request("REPORT", CAL, body=mg, Depth="1")
    assert r.status_code == 207 and "UID:e1" in r.text and "404 Not Found" in r.text


async def test_multiget_always_has_getetag(dav) -> None:
    await dav.request("PUT", CAL + "x.ics", body=event("x"))
    mg = (b'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
          b"<D:prop><C:calendar-data/></D:prop>"
          + f"<D:href>{CAL}x.ics</D:href>".encode() + b"</C:calendar-multiget>")
    r = await dav.request("REPORT", CAL, body=mg)
    assert "<D:getetag>" in r.text and "UID:x" in r.text


async def test_thunderbird_duplicate_uid_under_new_href(dav) -> None:
    r = await dav.request("PUT", CAL + "server-copy.ics", body=event("meeting-1"))
    assert r.status_code == 201
    again = event("meeting-1", extra="ATTENDEE;PARTSTAT=ACCEPTED:mailto:An.NV@hanoi.gov.vn\r\n")
    r = await dav.request("PUT", CAL + "thunderbird.ics", body=again, If_None_Match="*")
    assert r.status_code == 201, r.text
    r = await dav.request("GET", CAL + "thunderbird.ics")
    assert r.status_code == 200 and "PARTSTAT=ACCEPTED" in r.text
    assert "mailto:An.NV@hanoi.gov.vn" in r.text  # the organizer's case is kept
    assert (await dav.request("GET", CAL + "server-copy.ics")).status_code == 404


SYNC = (b'<D:sync-collection xmlns:D="DAV:"><D:sync-token>{}</D:sync-token>'
        b"<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>")


def sync_body(token: str) -> bytes:
    return SYNC.replace(b"{}", token.encode())


async def test_sync_tokens_davx5_empty_and_invalid(dav) -> None:
    await dav.request("PUT", CAL + "one.ics", body=event("one"))
    r = await dav.request("REPORT", CAL, body=sync_body(""))
    assert r.status_code == 207 and CAL + "one.ics" in hrefs(r.text)
    token = re.search(r"<D:sync-token>([^<]+)</D:sync-token>", r.text).group(1)
    await dav.request("PUT", CAL + "two.ics", body=event("two"))
    await dav.request("DELETE", CAL + "one.ics")
    r = await dav.request("REPORT", CAL, body=sync_body(token))
    assert CAL + "two.ics" in r.text and "404 Not Found" in r.text
    assert r.text.count("<D:response>") == 2
    r = await dav.request("REPORT", CAL, body=sync_body("http://example.com/bogus/1"))
    assert r.status_code == 403 and "valid-sync-token" in r.text


async def test_outlook_etag_long_uid_href_differs_and_color(dav) -> None:
    uid = "040000008200E00074C5B7101A82E008" + "0" * 200
    r = await dav.request("PUT", CAL + "outlook-item.ics",
                          body=event(uid, extra="COLOR:turquoise\r\n"))
    assert r.status_code == 201 and r.headers["etag"].startswith('"')
    etag = r.headers["etag"]
    r = await dav.request("PUT", CAL + "outlook-item.ics", body=event(uid, summary="Đổi"),
                          If_Match=etag)
    assert r.status_code == 204 and r.headers["etag"] != etag
    r = await dav.request("PUT", CAL + "outlook-item.ics", body=event(uid), If_Match=etag)
    assert r.status_code == 412
    r = await dav.request("GET", CAL + "outlook-item.ics")
    assert uid in r.text.replace("\r\n ", "")
    # calendar colour (Apple property) round-trips
    r = await dav.request("PROPPATCH", CAL, body=(
        b'<D:propertyupdate xmlns:D="DAV:" xmlns:I="http://apple.com/ns/ical/"><D:set><D:prop>'
        b"<I:calendar-color>#FF0000FF</I:calendar-color></D:prop></D:set></D:propertyupdate>"))
    assert r.status_code == 207 and "200 OK" in r.text
    r = await dav.request("PROPFIND", CAL, Depth="0", body=(
        b'<D:propfind xmlns:D="DAV:" xmlns:I="http://apple.com/ns/ical/"><D:prop>'
        b"<I:calendar-color/></D:prop></D:propfind>"))
    assert "#FF0000FF" in r.text


async def test_evolution_local_until_and_getctag(dav) -> None:
    getctag = (b'<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop>'
               b"<CS:getctag/></D:prop></D:propfind>")
    r = await dav.request("PROPFIND", CAL, body=getctag, Depth="0")
    before = re.search(r"<CS:getctag>([^<]+)<", r.text).group(1)
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Evolution//EN\r\nBEGIN:VTIMEZONE\r\n"
        "TZID:/freeassociation.sourceforge.net/Asia/Ho_Chi_Minh\r\n"
        "X-LIC-LOCATION:Asia/Ho_Chi_Minh\r\nBEGIN:STANDARD\r\nTZNAME:+07\r\n"
        "DTSTART:19700101T000000\r\nTZOFFSETFROM:+0700\r\nTZOFFSETTO:+0700\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:evo-1\r\n"
        "DTSTART;TZID=/freeassociation.sourceforge.net/Asia/Ho_Chi_Minh:20261207T080000\r\n"
        "DTEND;TZID=/freeassociation.sourceforge.net/Asia/Ho_Chi_Minh:20261207T090000\r\n"
        "RRULE:FREQ=WEEKLY;UNTIL=20261228T080000\r\nSUMMARY:Giao ban tuần\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    r = await dav.request("PUT", CAL + "evo.ics", body=body)
    assert r.status_code == 201, r.text
    r = await dav.request("PROPFIND", CAL, body=getctag, Depth="0")
    assert re.search(r"<CS:getctag>([^<]+)<", r.text).group(1) != before
    query = (b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
             b"<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name=\"VCALENDAR\">"
             b'<C:comp-filter name="VEVENT"><C:time-range start="20261228T000000Z" '
             b'end="20261229T000000Z"/></C:comp-filter></C:comp-filter></C:filter>'
             b"</C:calendar-query>")
    r = await dav.request("REPORT", CAL, body=query)
    assert CAL + "evo.ics" in hrefs(r.text)
    r = await dav.request("REPORT", CAL, body=query.replace(b"20261228", b"20270104").replace(
        b"20261229", b"20270105"))
    assert CAL + "evo.ics" not in hrefs(r.text)


async def test_expand_property_answered(dav) -> None:
    body = (b'<D:expand-property xmlns:D="DAV:"><D:property name="calendar-proxy-write-for" '
            b'namespace="http://calendarserver.org/ns/"><D:property name="displayname"/>'
            b"</D:property></D:expand-property>")
    r = await dav.request("REPORT", f"/dav/principals/users/{THU}/", user=THU, body=body)
    assert r.status_code == 207, r.text
    assert "Nguyễn Văn An" in r.text and PRINCIPAL in r.text
    r = await dav.request("REPORT", CAL, body=b'<X:unknown-report xmlns:X="urn:x"/>')
    assert r.status_code == 403 and "supported-report" in r.text
