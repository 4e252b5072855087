"""CalDAV basics over HTTP: discovery, PUT/GET/DELETE, PROPFIND, MKCALENDAR, PROPPATCH."""

from __future__ import annotations

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
