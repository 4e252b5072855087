"""MOVE of scheduling object resources (RFC 6638 §3.2.4).

Between one owner's calendars an organizer's event or an attendee's copy stays
the same scheduling object: nobody is invited again or cancelled, the
Schedule-Tag and the index follow it, the move is audited. Into another
owner's calendar it is refused; nor may two scheduling objects with one UID
stand in one owner's calendars (a PUT of the UID into another calendar moves
the existing one there, as Thunderbird's accept-into-another-calendar needs).
"""

from __future__ import annotations

import re

from congvu.services import Services
from congvu.store import audit as audit_repo
from tests.caldav.sched_helpers import AN, BINH, THU, attendee, copy, ics, inbox

BASE = "/dav/calendars/users/{}/{}/"


def url(owner: str, cal: str, href: str = "") -> str:
    return BASE.format(owner, cal) + href


async def mkcal(dav, owner: str, name: str) -> None:
    r = await dav.request("MKCALENDAR", url(owner, name), user=owner)
    assert r.status_code == 201, r.text


async def move(dav, user: str, src: str, dst: str, **headers: str):
    return await dav.request("MOVE", src, user=user,
                             Destination=f"http://mail.hanoi.gov.vn{dst}", **headers)


async def hrefs(dav, user: str, cal_url: str, start: str, end: str) -> set[str]:
    body = ('<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")
    r = await dav.request("REPORT", cal_url, user=user, body=body, Depth="1")
    assert r.status_code == 207, r.text
    return {h.rsplit("/", 1)[-1] for h in re.findall(r"<D:href>([^<]*)</D:href>", r.text)}


async def test_organizer_moves_between_own_calendars(dav, services: Services) -> None:
    await mkcal(dav, AN, "cong-tac")
    r = await dav.request("PUT", url(AN, "calendar", "hop.ics"), body=ics("mv-1", [THU]))
    assert r.status_code == 201
    tag = r.headers["schedule-tag"]
    before = await inbox(services, THU)
    thu_copy, _ = await copy(services, THU, "mv-1")  # type: ignore[misc]

    r = await move(dav, AN, url(AN, "calendar", "hop.ics"), url(AN, "cong-tac", "hop.ics"))
    assert r.status_code == 201, r.text
    # nobody was told anything: THU's inbox and copy are as they were
    assert await inbox(services, THU) == before
    after, _ = await copy(services, THU, "mv-1")  # type: ignore[misc]
    assert after.etag == thu_copy.etag
    # the object, its Schedule-Tag and its index are in the new calendar only
    r = await dav.request("GET", url(AN, "cong-tac", "hop.ics"))
    assert r.status_code == 200 and r.headers["schedule-tag"] == tag
    assert (await dav.request("GET", url(AN, "calendar", "hop.ics"))).status_code == 404
    assert await hrefs(dav, AN, url(AN, "cong-tac"), "20260305T000000Z",
                       "20260306T000000Z") == {"hop.ics"}
    assert await hrefs(dav, AN, url(AN, "calendar"), "20260305T000000Z",
                       "20260306T000000Z") == set()
    async with services.db.connection() as conn:
        moves = await audit_repo.recent(conn, actor=AN, action="calendar.move")
    assert moves and "mv-1" in str(moves[0])
    # an update from the new calendar reaches THU's copy (no second copy)
    r = await dav.request("PUT", url(AN, "cong-tac", "hop.ics"),
                          body=ics("mv-1", [THU], start="20260305T040000Z",
                                   end="20260305T050000Z", seq=1))
    assert r.status_code in (201, 204), r.text
    moved, _ = await copy(services, THU, "mv-1")  # type: ignore[misc]
    assert "20260305T040000Z" in moved.ics


async def test_attendee_moves_copy_and_still_answers(dav, services: Services) -> None:
    await mkcal(dav, THU, "rieng")
    assert (await dav.request("PUT", url(AN, "calendar", "a.ics"),
                              body=ics("mv-2", [THU]))).status_code == 201
    thu_copy, _ = await copy(services, THU, "mv-2")  # type: ignore[misc]
    an_inbox = await inbox(services, AN)
    r = await move(dav, THU, url(THU, "calendar", thu_copy.href), url(THU, "rieng", "x.ics"))
    assert r.status_code == 201, r.text
    assert await inbox(services, AN) == an_inbox  # no REPLY for a move
    # the organizer's next update finds the moved copy; no duplicate appears
    await dav.request("PUT", url(AN, "calendar", "a.ics"),
                      body=ics("mv-2", [THU], summary="Đổi phòng", seq=1))
    async with services.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM calendar_objects o JOIN calendars c"
            " ON c.owner_id = o.owner_id AND c.id = o.calendar_id"
            " WHERE o.uid = 'mv-2' AND c.kind = 'calendar'"
            " AND o.owner_id = (SELECT id FROM accounts WHERE address = $1)", THU)
    assert n == 1
    r = await dav.request("GET", url(THU, "rieng", "x.ics"), user=THU)
    assert "Đổi phòng" in r.text


async def test_scheduling_object_does_not_move_to_another_owner(dav, services) -> None:
    """THU may write AN's calendars (a delegate), but AN's meeting moved into
    THU's calendar would stop being AN's scheduling object: refused."""
    assert (await dav.request("PUT", url(AN, "calendar", "b.ics"),
                              body=ics("mv-3", [BINH]))).status_code == 201
    r = await move(dav, THU, url(AN, "calendar", "b.ics"), url(THU, "calendar", "b.ics"))
    assert r.status_code == 403, r.text
    assert "allowed-organizer-scheduling-object-change" in r.text
    assert (await dav.request("GET", url(AN, "calendar", "b.ics"))).status_code == 200
    # a plain event (no ORGANIZER) may move anywhere the actor may write
    plain = ics("mv-4", []).replace(b"ORGANIZER;CN=T\xe1\xbb\x95 ch\xe1\xbb\xa9c:mailto:"
                                    + AN.encode() + b"\r\n", b"")
    assert b"ORGANIZER" not in plain
    assert (await dav.request("PUT", url(AN, "calendar", "p.ics"), body=plain)).status_code == 201
    r = await move(dav, THU, url(AN, "calendar", "p.ics"), url(THU, "calendar", "p.ics"))
    assert r.status_code == 201, r.text


async def test_no_second_scheduling_object_with_one_uid(dav, services) -> None:
    await mkcal(dav, THU, "rieng")
    await mkcal(dav, THU, "khac")
    assert (await dav.request("PUT", url(AN, "calendar", "c.ics"),
                              body=ics("mv-5", [THU]))).status_code == 201
    thu_copy, _ = await copy(services, THU, "mv-5")  # type: ignore[misc]
    # Thunderbird accepts into another calendar under a new href: the server's
    # copy moves there (one object), and the organizer gets the REPLY.
    accepted = ics("mv-5", [f"{THU}=ACCEPTED"])
    r = await dav.request("PUT", url(THU, "rieng", "tb.ics"), user=THU, body=accepted)
    assert r.status_code == 201, r.text
    assert (await dav.request("GET", url(THU, "calendar", thu_copy.href),
                              user=THU)).status_code == 404
    _, an_cal = await copy(services, AN, "mv-5")  # type: ignore[misc]
    assert attendee(an_cal, THU)["PARTSTAT"] == "ACCEPTED"
    # a stray second copy (made behind the server's back) blocks a MOVE next to it
    async with services.db.transaction() as conn:
        from congvu.calendar.objects import write_object
        from congvu.store import calendars as repo
        thu = await services.directory.get_account(THU)
        khac = await repo.get_calendar(conn, repo.account_owner(thu), "khac")
        await write_object(conn, khac, "dup.ics", accepted)
    r = await move(dav, THU, url(THU, "rieng", "tb.ics"), url(THU, "calendar", "tb.ics"))
    assert r.status_code == 403 and "unique-scheduling-object-resource" in r.text, r.text
