"""The one-statement PUT (congvu.store.calendar_put) answers as the general path does.

A plain object (no ORGANIZER) written by its owner goes through
``put_plain``; everything it cannot decide (a scheduling object at the href,
the UID at another href, several entity tags, Schedule-Tag conditions,
a recurring event over one with indexed instances) falls back to the
general path. Each case checks the
answer and the stored state, and which path answered.
"""

from __future__ import annotations


from congvu.calendar import hooks
from congvu.services import Services
from congvu.store import calendars as repo
from tests.caldav.conftest import AN, THU, an_calendar, event
from tests.caldav.sched_helpers import copy, ics

CAL = f"/dav/calendars/users/{AN}/calendar/"


async def test_create_replace_and_preconditions(dav, services: Services, verdicts) -> None:
    token0 = (await an_calendar(services)).sync_token
    r = await dav.request("PUT", CAL + "a.ics", body=event("a"))
    assert r.status_code == 201 and r.headers["ETag"]
    etag = r.headers["ETag"]
    assert (await dav.request("GET", CAL + "a.ics")).headers["ETag"] == etag
    token1 = (await an_calendar(services)).sync_token
    assert token1 != token0

    # If-None-Match: * on an existing object, a wrong If-Match: 412, nothing changes
    r = await dav.request("PUT", CAL + "a.ics", body=event("a", summary="x"), If_None_Match="*")
    assert r.status_code == 412
    r = await dav.request("PUT", CAL + "a.ics", body=event("a", summary="x"),
                          If_Match='"not-it"')
    assert r.status_code == 412
    r = await dav.request("PUT", CAL + "new.ics", body=event("new"), If_Match="*")
    assert r.status_code == 412
    assert (await an_calendar(services)).sync_token == token1
    assert "SUMMARY:x" not in (await dav.request("GET", CAL + "a.ics")).text

    r = await dav.request("PUT", CAL + "a.ics", body=event("a", summary="Họp lại"),
                          If_Match=etag)
    assert r.status_code == 204 and r.headers["ETag"] != etag
    r = await dav.request("PUT", CAL + "a.ics", body=event("a", summary="Họp lần ba"),
                          If_Match="*")
    assert r.status_code == 204
    r = await dav.request("PUT", CAL + "b.ics", body=event("b"), If_None_Match="*")
    assert r.status_code == 201
    assert verdicts == ["written", "precondition", "precondition", "precondition",
                        "written", "written", "written"]
    # a sync from token1 sees a and b changed, nothing removed
    async with services.db.connection() as conn:
        changes = await repo.changes_since(conn, await an_calendar(services), token1)
    assert sorted(o.href for o in changes.changed) == ["a.ics", "b.ics"]
    assert changes.removed == []


async def test_recreated_href_leaves_no_tombstone(dav, services: Services, verdicts) -> None:
    await an_calendar(services)  # made on first use (by the general path)
    assert (await dav.request("PUT", CAL + "c.ics", body=event("c"))).status_code == 201
    token = (await an_calendar(services)).sync_token
    assert (await dav.request("DELETE", CAL + "c.ics")).status_code == 204
    assert (await dav.request("PUT", CAL + "c.ics", body=event("c2"))).status_code == 201
    async with services.db.connection() as conn:
        changes = await repo.changes_since(conn, await an_calendar(services), token)
    assert [o.href for o in changes.changed] == ["c.ics"] and changes.removed == []
    assert verdicts == ["written", "written"]


async def test_what_the_general_path_decides(dav, services: Services, verdicts) -> None:
    await an_calendar(services)
    assert (await dav.request("PUT", CAL + "d.ics", body=event("d"))).status_code == 201
    # the UID at another href: the general path moves the object there
    # (Thunderbird files an invitation under a new href)
    r = await dav.request("PUT", CAL + "e.ics", body=event("d"))
    assert r.status_code == 201
    assert (await dav.request("GET", CAL + "d.ics")).status_code == 404
    # a scheduling object at the href: replacing it, even by a plain one, is
    # for the scheduling hook to see (the general path, "slow" below)
    r = await dav.request("PUT", CAL + "m.ics", body=ics("m-1", [THU]))
    assert r.status_code == 201
    assert (await copy(services, THU, "m-1")) is not None
    r = await dav.request("PUT", CAL + "m.ics", body=event("m-1"))
    assert r.status_code == 204
    assert "ORGANIZER" not in (await dav.request("GET", CAL + "m.ics")).text
    # several entity tags
    r = await dav.request("PUT", CAL + "e.ics", body=event("d", summary="y"),
                          If_Match='"x", "y"')
    assert r.status_code == 412
    assert verdicts == ["written", "slow", "slow"]


async def _instances(services: Services, href: str) -> list[tuple[str, str]]:
    cal = await an_calendar(services)
    async with services.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT start_at, end_at FROM calendar_instances WHERE owner_id = $1"
            " AND calendar_id = $2 AND href = $3 ORDER BY start_at", cal.owner_id, cal.id, href)
    return [(r[0].strftime("%Y%m%dT%H%M%SZ"), r[1].strftime("%H%M")) for r in rows]


async def test_a_new_recurring_event_with_its_instances(dav, services: Services,
                                                        verdicts) -> None:
    """A new bounded series is written with its instances by the one statement;
    replacing one (old instances to remove) is for the general path."""
    await an_calendar(services)
    r = await dav.request("PUT", CAL + "r.ics",
                          body=event("r", extra="RRULE:FREQ=DAILY;COUNT=3\r\n"))
    assert r.status_code == 201
    assert verdicts == ["written"]
    assert await _instances(services, "r.ics") == [
        ("20261201T020000Z", "0300"), ("20261202T020000Z", "0300"),
        ("20261203T020000Z", "0300")]
    r = await dav.request("PUT", CAL + "r.ics", body=event(
        "r", "20261201T040000Z", "20261201T050000Z", extra="RRULE:FREQ=DAILY;COUNT=2\r\n"))
    assert r.status_code == 204
    assert verdicts == ["written", "slow"]
    assert await _instances(services, "r.ics") == [
        ("20261201T040000Z", "0500"), ("20261202T040000Z", "0500")]
    # the third day's instance is gone from time-range answers too
    query = (
        '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:"'
        ' xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20261203T000000Z" end="20261204T000000Z"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")
    r = await dav.request("REPORT", CAL, body=query, Depth="1")
    assert r.status_code == 207 and "r.ics" not in r.text
    # a plain event over it: the general path again (instances to remove)
    assert (await dav.request("PUT", CAL + "r.ics", body=event("r"))).status_code == 204
    assert await _instances(services, "r.ics") == []


async def test_hooks_run_when_one_is_not_scheduling_only(dav, monkeypatch, verdicts) -> None:
    calls: list[str] = []

    async def audit(tx, services, actor, owner, calendar, href, old, new):
        calls.append(href)

    monkeypatch.setattr(hooks, "OBJECT_HOOKS", [audit, *hooks.OBJECT_HOOKS])
    assert (await dav.request("PUT", CAL + "h.ics", body=event("h"))).status_code == 201
    assert calls == ["h.ics"] and verdicts == []


async def test_own_calendars_by_name(dav, services: Services, verdicts) -> None:
    await an_calendar(services)
    r = await dav.request("MKCALENDAR", f"/dav/calendars/users/{AN}/viec-rieng/")
    assert r.status_code == 201
    r = await dav.request("PUT", f"/dav/calendars/users/{AN}/viec-rieng/x.ics", body=event("x"))
    assert r.status_code == 201
    assert (await dav.request("GET", f"/dav/calendars/users/{AN}/viec-rieng/x.ics")).text
    assert (await dav.request("GET", CAL + "x.ics")).status_code == 404
    # the same UID in another calendar of the owner is allowed (UIDs are per calendar)
    assert (await dav.request("PUT", CAL + "x.ics", body=event("x"))).status_code == 201
    # no such calendar, the inbox: the general path answers
    r = await dav.request("PUT", f"/dav/calendars/users/{AN}/khong-co/y.ics", body=event("y"))
    assert r.status_code in (404, 409)
    r = await dav.request("PUT", f"/dav/calendars/users/{AN}/inbox/z.ics", body=event("z"))
    assert r.status_code != 201 or "z" not in (await dav.request("GET", CAL + "z.ics")).text
    # a delegate writing the leader's calendar: the general path (it audits)
    r = await dav.request("PUT", CAL + "t.ics", user=THU, body=event("t"))
    assert r.status_code == 201
    assert verdicts[:2] == ["written", "written"]
    assert verdicts[2:4] == ["slow", "slow"] and len(verdicts) == 4


async def test_new_connections_come_with_the_put_planned(services: Services) -> None:
    """A new pooled connection has the one-statement PUT prepared and on its
    generic plan (warmed for account 0: nothing written)."""
    from congvu.store.db import Database

    db = await Database.connect(services.db.params, min_size=1, max_size=1)
    try:
        async with db.connection() as conn:
            plans = await conn.fetch(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%at_href AS%'"
                " AND statement NOT LIKE '%pg_prepared_statements%'")
            assert len(plans) == 1 and plans[0]["generic_plans"] >= 1, plans
            assert await conn.fetchval(
                "SELECT count(*) FROM calendar_objects WHERE owner_id = 0") == 0
    finally:
        await db.close()
