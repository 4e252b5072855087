"""An organizer's update racing an attendee's answer loses neither (issue 5).

Before, the organizer's PUT read its stored copy before the scheduling hook
took the scheduling locks: an attendee's REPLY merged into that copy in
between was overwritten by the organizer's body (its PARTSTAT as the client
last saw it), while the attendee's own copy kept the answer; an iMIP REPLY
took no lock at all. Now the organizer's PUT takes the locks of everyone it
may touch (ascending account id, like every scheduling path) before it reads,
and an incoming REPLY takes the organizer's lock before it reads.

The race is made certain with an object hook that pauses the organizer's PUT
after its reads (and, now, with its locks held).
"""

from __future__ import annotations

import asyncio

import pytest

from congvu.calendar import hooks, scheduling
from congvu.services import Services
from tests.caldav.sched_helpers import AN, THU, account, attendee, copy, ics

GUEST = "khach@example.org"


def url(owner: str, href: str) -> str:
    return f"/dav/calendars/users/{owner}/calendar/{href}"


@pytest.fixture
def slow_organizer(monkeypatch):
    """Pauses the organizer's next PUT of ``org.ics`` once it is in its hooks."""
    state = {"armed": False, "entered": asyncio.Event()}

    async def pause(tx, services, actor, owner, calendar, href, old, new):
        if state["armed"] and href == "org.ics" and new is not None:
            state["armed"] = False
            state["entered"].set()
            await asyncio.sleep(0.5)
        return None

    monkeypatch.setattr(hooks, "OBJECT_HOOKS", [pause, *hooks.OBJECT_HOOKS])
    return state


async def test_reply_during_significant_update_is_kept(dav, services: Services,
                                                      slow_organizer) -> None:
    assert (await dav.request("PUT", url(AN, "org.ics"), body=ics("lost-1", [THU]))
            ).status_code == 201
    mine, _ = await copy(services, THU, "lost-1")  # type: ignore[misc]
    etag = (await dav.request("GET", url(AN, "org.ics"))).headers["etag"]
    slow_organizer["armed"] = True
    # A significant change (moved an hour), same SEQUENCE, THU as the client last saw.
    moved = ics("lost-1", [THU], start="20260305T040000Z", end="20260305T050000Z")

    async def organizer():
        return await dav.request("PUT", url(AN, "org.ics"), body=moved, if_match=etag)

    async def attendee_accepts():
        await slow_organizer["entered"].wait()
        return await dav.request("PUT", url(THU, mine.href), user=THU,
                                 body=ics("lost-1", [f"{THU}=ACCEPTED"]))

    org, thu = await asyncio.gather(organizer(), attendee_accepts())
    assert thu.status_code == 204, thu.text
    # The organizer read its copy before THU answered: its If-Match held then,
    # so it is applied first and THU's answer after it.
    assert org.status_code == 204, org.text
    _, an_cal = await copy(services, AN, "lost-1")  # type: ignore[misc]
    _, thu_cal = await copy(services, THU, "lost-1")  # type: ignore[misc]
    assert attendee(thu_cal, THU)["PARTSTAT"] == "ACCEPTED"
    assert attendee(an_cal, THU)["PARTSTAT"] == "ACCEPTED"
    assert "20260305T040000Z" in an_cal.walk("VEVENT")[0]["DTSTART"].to_ical().decode()


async def test_imip_reply_during_update_is_kept(dav, services: Services,
                                                slow_organizer) -> None:
    """An external attendee's iMIP REPLY (SMTP delivery transaction) arriving
    while the organizer's update runs is merged into the updated copy."""
    assert (await dav.request("PUT", url(AN, "org.ics"), body=ics("lost-2", [GUEST]))
            ).status_code == 201
    slow_organizer["armed"] = True
    moved = ics("lost-2", [GUEST], summary="Họp giao ban (dời phòng)",
                start="20260305T040000Z", end="20260305T050000Z")
    reply = ics("lost-2", [], extra=f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{GUEST}\r\n").replace(
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{AN}\r\n".encode(), b"").replace(
        b"VERSION:2.0\r\n", b"VERSION:2.0\r\nMETHOD:REPLY\r\n")
    an = await account(services.directory, AN)

    async def organizer():
        return await dav.request("PUT", url(AN, "org.ics"), body=moved)

    async def imip_reply():
        await slow_organizer["entered"].wait()
        async with services.db.transaction() as conn:
            return await scheduling.receive_reply(conn, services, an.id, reply, via="imip")

    org, applied = await asyncio.gather(organizer(), imip_reply())
    assert org.status_code == 204, org.text
    assert applied is True
    _, an_cal = await copy(services, AN, "lost-2")  # type: ignore[misc]
    ev = an_cal.walk("VEVENT")[0]
    assert attendee(an_cal, GUEST)["PARTSTAT"] == "ACCEPTED"
    assert "dời phòng" in str(ev["SUMMARY"])


async def test_answer_before_a_significant_update_is_kept(dav, services: Services) -> None:
    """RFC 6638 §3.2.10: the organizer's client saves a moved meeting with
    If-Schedule-Tag-Match (a REPLY does not change the tag) from a copy older
    than THU's answer. With the SEQUENCE unchanged THU's copy keeps the answer
    (RFC 5546: no new version to answer), so the organizer's copy keeps it too;
    a new SEQUENCE asks everyone again, on both sides."""
    assert (await dav.request("PUT", url(AN, "org.ics"), body=ics("kept-1", [THU]))
            ).status_code == 201
    tag = (await dav.request("GET", url(AN, "org.ics"))).headers["schedule-tag"]
    mine, _ = await copy(services, THU, "kept-1")  # type: ignore[misc]
    r = await dav.request("PUT", url(THU, mine.href), user=THU,
                          body=ics("kept-1", [f"{THU}=ACCEPTED"]))
    assert r.status_code == 204
    moved = ics("kept-1", [THU], start="20260305T040000Z", end="20260305T050000Z")
    r = await dav.request("PUT", url(AN, "org.ics"), body=moved, if_schedule_tag_match=tag)
    assert r.status_code == 204, r.text
    _, an_cal = await copy(services, AN, "kept-1")  # type: ignore[misc]
    _, thu_cal = await copy(services, THU, "kept-1")  # type: ignore[misc]
    assert attendee(an_cal, THU)["PARTSTAT"] == attendee(thu_cal, THU)["PARTSTAT"] == "ACCEPTED"
    assert "040000Z" in thu_cal.walk("VEVENT")[0]["DTSTART"].to_ical().decode()
    # a new SEQUENCE: asked again on both sides
    tag = (await dav.request("GET", url(AN, "org.ics"))).headers["schedule-tag"]
    r = await dav.request("PUT", url(AN, "org.ics"), if_schedule_tag_match=tag, body=ics(
        "kept-1", [THU], seq=1, start="20260306T040000Z", end="20260306T050000Z"))
    assert r.status_code == 204, r.text
    _, an_cal = await copy(services, AN, "kept-1")  # type: ignore[misc]
    _, thu_cal = await copy(services, THU, "kept-1")  # type: ignore[misc]
    assert (attendee(an_cal, THU)["PARTSTAT"] == attendee(thu_cal, THU)["PARTSTAT"]
            == "NEEDS-ACTION")
