"""Rights, privacy, unit work schedules, feeds and bad input: clear 4xx, nothing changed."""

from __future__ import annotations

import re

from conftest import AN, BINH, HOA, THU, event

from congvu.store import audit as audit_repo
from congvu.store import calendars as cal_repo

CAL = f"/dav/calendars/users/{AN}/calendar/"
UNIT_CAL = "/dav/calendars/units/so-tttt/work-schedule/"
QUERY_ALL = (b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
             b"<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter>"
             b'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter>'
             b"</C:filter></C:calendar-query>")


async def count(services, owner_address: str) -> int:
    async with services.db.connection() as conn:
        acc = await services.directory.get_account(owner_address)
        cal = await cal_repo.default_calendar(conn, cal_repo.account_owner(acc))
        return await cal_repo.count_objects(conn, cal)


async def test_write_without_rights_is_403_need_privileges(dav, services) -> None:
    await dav.request("PUT", CAL + "a.ics", body=event("a"))
    r = await dav.request("PUT", CAL + "b.ics", user=BINH, body=event("b"))
    assert r.status_code == 403 and "need-privileges" in r.text
    r = await dav.request("DELETE", CAL + "a.ics", user=BINH)
    assert r.status_code == 403
    r = await dav.request("GET", CAL + "a.ics", user=BINH)
    assert r.status_code == 403
    r = await dav.request("REPORT", CAL, user=BINH, body=QUERY_ALL)
    assert r.status_code == 403
    assert await count(services, AN) == 1
    r = await dav.request("PROPPATCH", CAL, user=BINH, body=(
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname>'
        b"</D:prop></D:set></D:propertyupdate>"))
    assert r.status_code == 403


async def test_private_events_are_busy_time_for_readers(dav, services) -> None:
    await services.directory.grant(AN, HOA, "calendar-read", "test")
    secret = event("p1", summary="Gặp riêng", extra="CLASS:PRIVATE\r\nLOCATION:Phòng 3\r\n"
                   "DESCRIPTION:Nội dung mật\r\n")
    assert (await dav.request("PUT", CAL + "p1.ics", body=secret)).status_code == 201
    r = await dav.request("GET", CAL + "p1.ics", user=HOA)
    assert r.status_code == 200 and "Gặp riêng" not in r.text and "Phòng 3" not in r.text
    assert "DTSTART" in r.text and "CLASS:PRIVATE" in r.text
    r = await dav.request("REPORT", CAL, user=HOA, body=QUERY_ALL)
    assert "Nội dung mật" not in r.text and "p1.ics" in r.text
    # the secretary with calendar-write sees everything, and her edits are audited
    r = await dav.request("GET", CAL + "p1.ics", user=THU)
    assert "Gặp riêng" in r.text
    r = await dav.request("PUT", CAL + "t.ics", user=THU, body=event("t"))
    assert r.status_code == 201
    r = await dav.request("PUT", CAL + "t2.ics", user=HOA, body=event("t2"))
    assert r.status_code == 403
    async with services.db.connection() as conn:
        entries = await audit_repo.recent(conn, actor=THU, action="calendar.")
    assert [e.target for e in entries] == [AN]


async def test_unit_schedule_rights_publication_and_feed(dav, services, cli_settings=None) -> None:
    # thu.lt is schedule-manager of so-tttt; an.nv is a member; hoa.nt is in a ward elsewhere
    r = await dav.request("PUT", UNIT_CAL + "w1.ics", user=THU, body=event("w1", summary="Lịch tuần"))
    assert r.status_code == 201, r.text
    r = await dav.request("PUT", UNIT_CAL + "w2.ics", user=AN, body=event("w2"))
    assert r.status_code == 403
    r = await dav.request("GET", UNIT_CAL + "w1.ics", user=AN)
    assert r.status_code == 200
    # so-tttt is below the city: default publication is its subtree, the ward cannot read
    r = await dav.request("GET", UNIT_CAL + "w1.ics", user=HOA)
    assert r.status_code == 403
    unit = await services.directory.get_unit("so-tttt")
    async with services.db.transaction() as conn:
        await cal_repo.set_publication(conn, unit.id, "organisation", "test")
    r = await dav.request("GET", UNIT_CAL + "w1.ics", user=HOA)
    assert r.status_code == 200 and "Lịch tuần" in r.text
    r = await dav.request("PROPFIND", "/dav/principals/units/so-tttt/", user=HOA, Depth="0", body=(
        b'<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
        b"<C:calendar-home-set/><D:group-member-set/></D:prop></D:propfind>"))
    assert "/dav/calendars/units/so-tttt/" in r.text and AN in r.text
    async with services.db.transaction() as conn:
        cal = await cal_repo.default_calendar(conn, cal_repo.unit_owner(unit))
        token = await cal_repo.create_feed(conn, cal, "test")
    feed = await dav.as_("nobody").get(f"/dav/feeds/{token}.ics", headers={"Authorization": ""})
    assert feed.status_code == 200 and "Lịch tuần" in feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    async with services.db.transaction() as conn:
        await cal_repo.revoke_feeds(conn, cal)
    gone = await dav.as_("nobody").get(f"/dav/feeds/{token}.ics")
    assert gone.status_code == 404


async def test_bad_input_changes_nothing(dav, services) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><D:propfind xmlns:D="DAV:">'
            b"<D:prop><D:displayname>&lol2;</D:displayname></D:prop></D:propfind>")
    for method in ("PROPFIND", "PROPPATCH", "REPORT"):
        r = await dav.request(method, CAL, body=bomb)
        assert r.status_code == 400, method
    xxe = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>&e;</D:displayname>'
           b"</D:prop></D:set></D:propertyupdate>")
    r = await dav.request("PROPPATCH", CAL, body=xxe)
    assert r.status_code == 400 and "root:" not in r.text
    r = await dav.request("PUT", CAL + "bad.ics", body=b"BEGIN:VCALENDAR\r\nnot really\r\n")
    assert r.status_code == 400 and "valid-calendar-data" in r.text
    r = await dav.request("PUT", CAL + "bad2.ics", body=b"hello")
    assert r.status_code == 400 and "valid-calendar-data" in r.text
    r = await dav.request("PUT", CAL + "nouid.ics", body=event("x").replace(b"UID:x\r\n", b""))
    assert r.status_code == 400
    assert await count(services, AN) == 0
    r = await dav.request("PROPFIND", CAL, Depth="0")
    assert r.status_code == 207 and "Lịch" in r.text
    r = await dav.as_("nobody@hanoi.gov.vn").request("PROPFIND", CAL)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    r = await dav.request("PUT", CAL + "ok.ics", body=event("ok"))
    assert r.status_code == 201


async def test_mkcalendar_proppatch_move_and_delete(dav) -> None:
    new = f"/dav/calendars/users/{AN}/du-an/"
    r = await dav.request("MKCALENDAR", new, body=(
        '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
        "<D:displayname>Dự án</D:displayname></D:prop></D:set></C:mkcalendar>").encode())
    assert r.status_code == 201, r.text
    r = await dav.request("MKCALENDAR", new)
    assert r.status_code == 405
    r = await dav.request("MKCALENDAR", f"/dav/calendars/users/{AN}/x/", user=THU)
    assert r.status_code == 403
    await dav.request("PUT", CAL + "m.ics", body=event("m"))
    r = await dav.request("MOVE", CAL + "m.ics", Destination=f"http://mail.hanoi.gov.vn{new}m2.ics")
    assert r.status_code == 201, r.text
    assert (await dav.request("GET", new + "m2.ics")).status_code == 200
    assert (await dav.request("GET", CAL + "m.ics")).status_code == 404
    r = await dav.request("PROPFIND", f"/dav/calendars/users/{AN}/", Depth="1")
    assert "Dự án" in r.text
    assert (await dav.request("DELETE", new)).status_code == 204
    assert (await dav.request("DELETE", CAL)).status_code == 403  # the default stays


async def test_principal_property_search_vietnamese(dav) -> None:
    body = (b'<D:principal-property-search xmlns:D="DAV:"><D:property-search><D:prop>'
            b"<D:displayname/></D:prop><D:match>nguyen van</D:match></D:property-search>"
            b"<D:prop><D:displayname/></D:prop></D:principal-property-search>")
    r = await dav.request("REPORT", "/dav/principals/", body=body, Depth="0")
    assert r.status_code == 207 and "Nguyễn Văn An" in r.text and "Lê Thị Thu" not in r.text
    r = await dav.request("REPORT", "/dav/principals/", body=body.replace(
        b"nguyen van", "LÊ THỊ".encode()))
    assert "Lê Thị Thu" in r.text
    r = await dav.request("REPORT", "/dav/principals/", body=(
        b'<D:principal-search-property-set xmlns:D="DAV:"/>'))
    assert r.status_code == 200 and "displayname" in r.text


async def test_unit_schedules_appear_in_each_officials_home(dav) -> None:
    def listed(text: str) -> set[str]:
        return {h.rstrip("/").rsplit("/", 1)[-1]
                for h in re.findall(r"<D:href>([^<]*/unit-[^<]*)</D:href>", text)}

    r = await dav.request("PROPFIND", f"/dav/calendars/users/{AN}/", Depth="1")
    assert listed(r.text) == {"unit-so-tttt", "unit-ubnd-tp"}
    assert "Lịch công tác – Sở Thông tin và Truyền thông" in r.text
    r = await dav.request("PROPFIND", f"/dav/calendars/users/{HOA}/", user=HOA, Depth="1")
    assert listed(r.text) == {"unit-p-ht", "unit-q-hk", "unit-ubnd-tp"}
    # the schedule manager writes through her own home; a member reads it in his
    mine = f"/dav/calendars/users/{THU}/unit-so-tttt/"
    r = await dav.request("PUT", mine + "w.ics", user=THU, body=event("w", summary="Họp Sở"))
    assert r.status_code == 201, r.text
    r = await dav.request("GET", f"/dav/calendars/users/{AN}/unit-so-tttt/w.ics")
    assert r.status_code == 200 and "Họp Sở" in r.text
    r = await dav.request("PUT", f"/dav/calendars/users/{AN}/unit-so-tttt/x.ics", body=event("x"))
    assert r.status_code == 403
    r = await dav.request("GET", f"/dav/calendars/users/{HOA}/unit-so-tttt/w.ics", user=HOA)
    assert r.status_code == 404
    r = await dav.request("GET", UNIT_CAL + "w.ics", user=AN)
    assert r.status_code == 200
