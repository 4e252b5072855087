"""Scheduling over HTTP (RFC 6638): the caldav library and HTTP transcripts against /dav/."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy

import caldav
import httpx
from icalendar import Calendar

from congvu.directory.service import Directory
from congvu.services import Services
from tests.caldav.sched_helpers import (AN, BINH, DOMAIN, HOA, ROOM, THU, attendee, copy,
                                        http, ics, make_room, object_url)
from tests.conftest import PASSWORD


def xml_of(resp: httpx.Response) -> str:
    return resp.content.decode("utf-8")


async def test_options_advertises_scheduling(dav_url: str) -> None:
    for client in (httpx.AsyncClient(base_url=dav_url), http(dav_url, AN)):
        async with client as c:
            r = await c.request("OPTIONS", f"/dav/principals/users/{AN}/")
        assert r.status_code == 200
        features = {f.strip() for f in r.headers["DAV"].split(",")}
        assert {"calendar-access", "calendar-auto-schedule", "calendar-schedule"} <= features
        assert "POST" in r.headers["Allow"]


async def test_principal_scheduling_properties(dav_url: str) -> None:
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:schedule-inbox-URL/>'
            '<C:schedule-outbox-URL/><C:calendar-user-address-set/>'
            '<C:schedule-default-calendar-URL/></D:prop></D:propfind>')
    async with http(dav_url, AN) as c:
        r = await c.request("PROPFIND", f"/dav/principals/users/{AN}/", content=body,
                            headers={"Depth": "0"})
        assert r.status_code == 207
        text = xml_of(r)
        for path in (f"/dav/calendars/users/{AN}/inbox/", f"/dav/calendars/users/{AN}/outbox/",
                     f"/dav/calendars/users/{AN}/calendar/", f"mailto:{AN}"):
            assert path in text
        # The inbox is a schedule-inbox, not a calendar (RFC 6638 §2.2).
        r = await c.request("PROPFIND", f"/dav/calendars/users/{AN}/inbox/", headers={
            "Depth": "0"}, content='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
                                   '<D:resourcetype/></D:prop></D:propfind>')
        assert r.status_code == 207 and "schedule-inbox" in xml_of(r)
        assert ":calendar/>" not in xml_of(r)


def caldav_client(base: str, who: str) -> caldav.DAVClient:
    return caldav.DAVClient(url=f"{base}/dav/", username=who, password=PASSWORD,
                            require_tls=False)


def _organize(base: str, uid: str) -> None:
    with caldav_client(base, AN) as client:
        cal = client.principal().calendars()[0]
        cal.save_event(ics(uid, [BINH]).decode())


def _accept(base: str) -> int:
    with caldav_client(base, BINH) as client:
        items = client.principal().schedule_inbox().get_items()
        invites = [i for i in items if i.is_invite_request()]
        for invite in invites:
            invite.accept_invite()
        return len(invites)


def _partstat(base: str, uid: str, who: str) -> str:
    with caldav_client(base, AN) as client:
        event = client.principal().calendars()[0].event_by_uid(uid)
        vevent = Calendar.from_ical(event.data).walk("VEVENT")[0]
        for a in vevent["ATTENDEE"] if isinstance(vevent["ATTENDEE"], list) else [vevent["ATTENDEE"]]:
            if str(a).lower() == f"mailto:{who}":
                return str(a.params.get("PARTSTAT"))
    raise AssertionError("attendee missing")


async def test_caldav_library_invite_accept(dav_url: str) -> None:
    await asyncio.to_thread(_organize, dav_url, "thu-vien-1")
    assert await asyncio.to_thread(_accept, dav_url) == 1
    assert await asyncio.to_thread(_partstat, dav_url, "thu-vien-1", BINH) == "ACCEPTED"


async def test_put_returns_schedule_tag_and_if_schedule_tag_match(
        dav_url: str, services: Services) -> None:
    async with http(dav_url, AN) as an, http(dav_url, BINH) as binh:
        r = await an.put(object_url(AN, "st.ics"), content=ics("st-1", [BINH]),
                         headers={"Content-Type": "text/calendar"})
        assert r.status_code == 201 and r.headers.get("Schedule-Tag")
        # SCHEDULE-STATUS was added: no ETag (RFC 4791 §5.3.4), the client refetches.
        assert "ETag" not in r.headers
        found = await copy(services, BINH, "st-1")
        assert found is not None
        obj, _ = found
        url = object_url(BINH, obj.href)
        r = await binh.get(url)
        tag = r.headers["Schedule-Tag"]
        accepted = r.content.replace(b"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:binh",
                                     b"PARTSTAT=ACCEPTED:mailto:binh")
        # A stale Schedule-Tag is refused (RFC 6638 §3.2.10) and changes nothing.
        r = await binh.put(url, content=accepted, headers={"If-Schedule-Tag-Match": '"old"'})
        assert r.status_code == 412
        r = await binh.put(url, content=accepted, headers={"If-Schedule-Tag-Match": tag})
        assert r.status_code == 204 and r.headers["Schedule-Tag"] == tag
        assert r.headers["ETag"]  # stored as sent
    _, an_cal = await copy(services, AN, "st-1")  # type: ignore[misc]
    assert attendee(an_cal, BINH)["PARTSTAT"] == "ACCEPTED"


FREEBUSY = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
METHOD:REQUEST\r
BEGIN:VFREEBUSY\r
UID:fb-1\r
DTSTAMP:20260301T000000Z\r
DTSTART:20260305T000000Z\r
DTEND:20260306T000000Z\r
ORGANIZER:mailto:{organizer}\r
ATTENDEE:mailto:{binh}\r
ATTENDEE:mailto:khach@example.org\r
ATTENDEE:mailto:khong-co@{domain}\r
END:VFREEBUSY\r
END:VCALENDAR\r
"""


async def test_outbox_freebusy_busy_time_only(dav_url: str) -> None:
    secret = ics("bi-mat", [], organizer=BINH, summary="Tiếp đoàn thanh tra bí mật",
                 extra="CLASS:PRIVATE\r\nLOCATION:Phòng kín\r\n")
    body = FREEBUSY.format(organizer=AN, binh=BINH, domain=DOMAIN)
    async with http(dav_url, BINH) as binh, http(dav_url, AN) as an, \
            http(dav_url, HOA) as hoa:
        r = await binh.put(object_url(BINH, "bm.ics"), content=secret)
        assert r.status_code == 201
        r = await an.post(f"/dav/calendars/users/{AN}/outbox/", content=body,
                          headers={"Content-Type": "text/calendar"})
        assert r.status_code == 200, r.text
        text = xml_of(r)
        assert "schedule-response" in text and "2.0;Success" in text
        assert "FREEBUSY;FBTYPE=BUSY:20260305T020000Z/20260305T030000Z" in text
        assert "bí mật" not in text and "Phòng kín" not in text and "SUMMARY" not in text
        assert "5.3;" in text and "3.7;" in text  # external, unknown
        # Someone else's outbox: refused, and an ORGANIZER that is not the owner too.
        r = await hoa.post(f"/dav/calendars/users/{AN}/outbox/", content=body)
        assert r.status_code == 403
        r = await hoa.post(f"/dav/calendars/users/{HOA}/outbox/", content=body)
        assert r.status_code == 403 and "organizer-allowed" in r.text
        r = await an.post(f"/dav/calendars/users/{AN}/outbox/", content=b"BEGIN:VCALENDAR")
        assert r.status_code == 400


async def test_room_auto_accept_and_concurrent_bookings(dav_url: str, services: Services,
                                                        org: Directory) -> None:
    await make_room(org)
    async with http(dav_url, AN) as an, http(dav_url, BINH) as binh:
        rs = await asyncio.gather(
            an.put(object_url(AN, "p1.ics"), content=ics("p-1", [ROOM])),
            binh.put(object_url(BINH, "p2.ics"), content=ics("p-2", [ROOM], organizer=BINH)),
        )
        assert [r.status_code for r in rs] == [201, 201]
        a = (await an.get(object_url(AN, "p1.ics"))).content
        b = (await binh.get(object_url(BINH, "p2.ics"))).content
    answers = sorted(attendee(Calendar.from_ical(x), ROOM)["PARTSTAT"] for x in (a, b))
    assert answers == ["ACCEPTED", "DECLINED"]
    held = [await copy(services, ROOM, u) for u in ("p-1", "p-2")]
    assert sum(h is not None for h in held) == 1


async def test_cancel_over_http(dav_url: str, services: Services) -> None:
    async with http(dav_url, AN) as an:
        assert (await an.put(object_url(AN, "h.ics"), content=ics("h-1", [BINH]))).status_code == 201
        assert (await an.delete(object_url(AN, "h.ics"))).status_code == 204
    _, binh_cal = await copy(services, BINH, "h-1")  # type: ignore[misc]
    assert str(binh_cal.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"


async def test_task_assignment_over_http(dav_url: str, services: Services) -> None:
    task = ics("viec-1", [HOA], comp="VTODO", end="20260310T100000Z",
               extra="STATUS:NEEDS-ACTION\r\n", summary="Báo cáo sau họp HĐND")
    async with http(dav_url, BINH) as binh, http(dav_url, HOA) as hoa:
        # A district chairman assigns a task to a ward official (across levels).
        r = await binh.put(object_url(BINH, "viec.ics"),
                           content=task.replace(AN.encode(), BINH.encode()))
        assert r.status_code == 201
        obj, _ = await copy(services, HOA, "viec-1")  # type: ignore[misc]
        url = object_url(HOA, obj.href)
        mine = (await hoa.get(url)).content
        done = mine.replace(b"STATUS:NEEDS-ACTION", b"STATUS:COMPLETED")
        assert (await hoa.put(url, content=done)).status_code == 204
        assigner = Calendar.from_ical((await binh.get(object_url(BINH, "viec.ics"))).content)
    todo = assigner.walk("VTODO")[0]
    assert str(todo["STATUS"]) == "COMPLETED"
    assert attendee(assigner, HOA, "VTODO")["PARTSTAT"] == "COMPLETED"


async def test_delegate_organises_over_http(dav_url: str, services: Services) -> None:
    async with http(dav_url, THU) as thu, http(dav_url, HOA) as hoa:
        r = await thu.put(object_url(AN, "uq.ics"), content=ics("uq-1", [BINH]))
        assert r.status_code == 201
        # Without a grant, no organising in someone else's calendar.
        r = await hoa.put(object_url(AN, "x.ics"), content=ics("x-1", [BINH]))
        assert r.status_code == 403
    _, binh_cal = await copy(services, BINH, "uq-1")  # type: ignore[misc]
    organizer = binh_cal.walk("VEVENT")[0]["ORGANIZER"]
    assert str(organizer) == f"mailto:{AN}" and organizer.params["SENT-BY"] == f"mailto:{THU}"
    assert await copy(services, BINH, "x-1") is None


async def test_external_attendee_over_http(dav_url: str, services: Services) -> None:
    async with http(dav_url, AN) as an:
        r = await an.put(object_url(AN, "ng.ics"), content=ics("ng-1", ["guest@example.com"]))
        assert r.status_code == 201
    async with services.db.connection() as conn:
        raw = await conn.fetchval("SELECT raw FROM outbound_messages")
    msg = message_from_bytes(bytes(raw), policy=policy.default)
    assert msg["To"] == "guest@example.com" and AN in msg["From"]
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "REQUEST"
