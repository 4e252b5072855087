"""Floating times (RFC 4791 §9.9): read in the calendar's zone, never in UTC.

The organisation is in Vietnam (Asia/Ho_Chi_Minh, UTC+7): a floating 09:00
meeting is 02:00Z. The index (first start, last end, instances), calendar-query,
expand and free-busy must all agree on that; a calendar-timezone set by
PROPPATCH or a query's CALDAV:timezone moves them together.
"""

from __future__ import annotations

import re

from conftest import AN, event

from congvu.calendar import objects
from congvu.store import calendars as repo
from congvu.store.calendars import account_owner

CAL = f"/dav/calendars/users/{AN}/calendar/"


def query(start: str, end: str, tz: str = "", data: str = "") -> bytes:
    return ('<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:prop><D:getetag/>{data}</D:prop><C:filter><C:comp-filter name=\"VCALENDAR\">"
            f'<C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/>'
            f"</C:comp-filter></C:comp-filter></C:filter>{tz}</C:calendar-query>").encode()


async def hits(dav, start: str, end: str, tz: str = "") -> set[str]:
    r = await dav.request("REPORT", CAL, body=query(start, end, tz), Depth="1")
    assert r.status_code == 207, r.text
    return {h.rsplit("/", 1)[-1] for h in re.findall(r"<D:href>([^<]*)</D:href>", r.text)}


def vtimezone(tzid: str, offset: str = "+0100") -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTIMEZONE\r\n"
            f"TZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
            f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\n"
            "END:VTIMEZONE\r\nEND:VCALENDAR\r\n")


async def put_floating(dav) -> None:
    # 09:00-10:00 local (floating), an all-day day, and a daily floating series
    assert (await dav.request("PUT", CAL + "hop.ics", body=event(
        "hop", "20261201T090000", "20261201T100000"))).status_code == 201
    allday = event("nghi", "20261203", "20261204").replace(
        b"DTSTART:20261203", b"DTSTART;VALUE=DATE:20261203").replace(
        b"DTEND:20261204", b"DTEND;VALUE=DATE:20261204")
    assert (await dav.request("PUT", CAL + "nghi.ics", body=allday)).status_code == 201
    assert (await dav.request("PUT", CAL + "daily.ics", body=event(
        "daily", "20261207T080000", "20261207T083000",
        "RRULE:FREQ=DAILY;COUNT=3\r\n"))).status_code == 201


async def test_floating_times_in_the_organisation_zone(dav, services) -> None:
    await put_floating(dav)
    # 09:00 in Hanoi is 02:00Z; read as UTC it would be 09:00Z.
    assert await hits(dav, "20261201T013000Z", "20261201T023000Z") == {"hop.ics"}
    assert await hits(dav, "20261201T083000Z", "20261201T093000Z") == set()
    # The all-day 3 December is 2 Dec 17:00Z .. 3 Dec 17:00Z.
    assert await hits(dav, "20261202T170000Z", "20261202T173000Z") == {"nghi.ics"}
    assert await hits(dav, "20261203T180000Z", "20261203T190000Z") == set()
    # Every instance of the series: 08:00 local = 01:00Z on 7, 8 and 9 December.
    assert await hits(dav, "20261209T010000Z", "20261209T011000Z") == {"daily.ics"}
    assert await hits(dav, "20261209T080000Z", "20261209T083000Z") == set()
    # The index agrees with the exact test.
    async with services.db.connection() as conn:
        an = await conn.fetchval("SELECT id FROM accounts WHERE address = $1", AN)
        cal = await repo.default_calendar(conn, account_owner(type("A", (), {"id": an})))
        obj = await repo.get_object(conn, cal, "hop.ics")
        assert obj.first_start.isoformat().startswith("2026-12-01T02:00:00")
        row = await conn.fetchrow(
            "SELECT floating_tz FROM calendar_objects WHERE owner_id = $1 AND href = 'hop.ics'",
            an)
        assert row["floating_tz"] == "Asia/Ho_Chi_Minh"
    # expand gives UTC instants computed in the same zone
    r = await dav.request("REPORT", CAL, Depth="1", body=query(
        "20261207T000000Z", "20261210T000000Z",
        data='<C:calendar-data><C:expand start="20261207T000000Z" end="20261210T000000Z"/>'
             "</C:calendar-data>"))
    assert "DTSTART:20261208T010000Z" in r.text, r.text
    # free-busy: busy 02:00-03:00Z, not 09:00-10:00Z
    r = await dav.request("REPORT", CAL, Depth="1", body=(
        b'<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b'<C:time-range start="20261201T000000Z" end="20261202T000000Z"/></C:free-busy-query>'))
    assert r.status_code == 200
    assert "20261201T020000Z/20261201T030000Z" in r.text.replace("\r\n ", ""), r.text


async def test_calendar_timezone_moves_floating_times(dav) -> None:
    await put_floating(dav)
    body = ('<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:set><D:prop><C:calendar-timezone>"
            + vtimezone("Europe/Paris").replace("\r\n", "&#13;\n")
            + "</C:calendar-timezone></D:prop></D:set></D:propertyupdate>")
    r = await dav.request("PROPPATCH", CAL, body=body)
    assert r.status_code == 207 and "200 OK" in r.text, r.text
    # In Paris (UTC+1 in December) 09:00 is 08:00Z: the index was redone.
    assert await hits(dav, "20261201T013000Z", "20261201T023000Z") == set()
    assert await hits(dav, "20261201T073000Z", "20261201T083000Z") == {"hop.ics"}
    assert await hits(dav, "20261209T070000Z", "20261209T071000Z") == {"daily.ics"}
    # A bad VTIMEZONE is refused (RFC 4791 §5.2.2) and changes nothing.
    bad = ('<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
           "<D:set><D:prop><C:calendar-timezone>BEGIN:VCALENDAR&#13;\nEND:VCALENDAR"
           "</C:calendar-timezone></D:prop></D:set></D:propertyupdate>")
    r = await dav.request("PROPPATCH", CAL, body=bad)
    assert "403" in r.text
    assert await hits(dav, "20261201T073000Z", "20261201T083000Z") == {"hop.ics"}


async def test_query_timezone_overrides_calendar_zone(dav) -> None:
    await put_floating(dav)
    paris = ("<C:timezone>" + vtimezone("Europe/Paris").replace("\r\n", "&#13;\n")
             + "</C:timezone>")
    assert await hits(dav, "20261201T073000Z", "20261201T083000Z", paris) == {"hop.ics"}
    assert await hits(dav, "20261201T013000Z", "20261201T023000Z", paris) == set()
    # A custom VTIMEZONE (no IANA name) is read by its own rules: UTC-5.
    custom = ("<C:timezone>" + vtimezone("Custom/Minus5", "-0500").replace("\r\n", "&#13;\n")
              + "</C:timezone>")
    assert await hits(dav, "20261201T133000Z", "20261201T143000Z", custom) == {"hop.ics"}
    bad = "<C:timezone>not a zone</C:timezone>"
    r = await dav.request("REPORT", CAL, body=query("20261201T000000Z", "20261202T000000Z",
                                                    bad), Depth="1")
    assert r.status_code == 403 and "valid-calendar-data" in r.text


async def test_rows_indexed_in_another_zone_are_redone(dav, services) -> None:
    """Rows from before migration 009 (floating read as UTC) and a changed
    configured zone are indexed again by the sweep."""
    await put_floating(dav)
    async with services.db.connection() as conn:
        # What the index looked like before: 09:00 floating read as 09:00Z.
        await conn.execute(
            """UPDATE calendar_objects SET floating_tz = 'UTC',
                   first_start = '2026-12-01T09:00:00Z', last_end = '2026-12-01T10:00:00Z'
               WHERE href = 'hop.ics'""")
    assert await hits(dav, "20261201T013000Z", "20261201T023000Z") == set()
    assert await objects.reindex_stale(services.db) >= 1
    assert await hits(dav, "20261201T013000Z", "20261201T023000Z") == {"hop.ics"}
    assert await objects.reindex_stale(services.db) == 0


async def test_alarm_of_a_floating_event_in_the_calendar_zone(dav) -> None:
    """A relative VALARM follows its floating DTSTART (RFC 4791 §9.9 VALARM)."""
    alarm = ("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Nhắc\r\nTRIGGER:-PT15M\r\n"
             "END:VALARM\r\n")
    assert (await dav.request("PUT", CAL + "nhac.ics", body=event(
        "nhac", "20261201T090000", "20261201T100000", alarm))).status_code == 201

    async def alarms(start: str, end: str) -> set[str]:
        body = ('<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
                '<C:comp-filter name="VEVENT"><C:comp-filter name="VALARM">'
                f'<C:time-range start="{start}" end="{end}"/></C:comp-filter>'
                "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")
        r = await dav.request("REPORT", CAL, body=body, Depth="1")
        assert r.status_code == 207, r.text
        return {h.rsplit("/", 1)[-1] for h in re.findall(r"<D:href>([^<]*)</D:href>", r.text)}

    assert await alarms("20261201T014000Z", "20261201T015000Z") == {"nhac.ics"}  # 08:45 local
    assert await alarms("20261201T084000Z", "20261201T085000Z") == set()


async def test_timezone_changed_while_a_put_was_under_way(dav, monkeypatch) -> None:
    """A PROPPATCH of calendar-timezone committing between a PUT's read of the
    calendar and its write: the PUT's floating times end up in the new zone."""
    import asyncio

    from congvu.calendar import hooks

    entered = asyncio.Event()

    async def pause(tx, services, actor, owner, calendar, href, old, new):
        if href == "tz.ics":
            entered.set()
            await asyncio.sleep(0.3)
        return None

    monkeypatch.setattr(hooks, "OBJECT_HOOKS", [pause, *hooks.OBJECT_HOOKS])
    # the calendar exists first (else the PUT creates it and the PROPPATCH waits)
    assert (await dav.request("PUT", CAL + "first.ics", body=event(
        "first", "20261105T020000Z", "20261105T030000Z"))).status_code == 201
    body = ('<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:set><D:prop><C:calendar-timezone>"
            + vtimezone("Europe/Paris").replace("\r\n", "&#13;\n")
            + "</C:calendar-timezone></D:prop></D:set></D:propertyupdate>")

    async def proppatch():
        await entered.wait()
        return await dav.request("PROPPATCH", CAL, body=body)

    put, patch = await asyncio.gather(
        dav.request("PUT", CAL + "tz.ics", body=event("tz", "20261201T090000",
                                                     "20261201T100000")),
        proppatch())
    assert put.status_code == 201 and patch.status_code == 207, (put.text, patch.text)
    assert await hits(dav, "20261201T073000Z", "20261201T083000Z") == {"tz.ics"}
    assert await hits(dav, "20261201T013000Z", "20261201T023000Z") == set()
