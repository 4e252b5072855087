"""The schedule inbox keeps every scheduling message a client needs (RFC 6638 §4).

Before, one message per UID survived: an organizer saw only the last
attendee's REPLY, an attendee the CANCEL but not the REQUEST it cancels.
Now each is a resource of its own; only a newer message of the same METHOD
from the same sender for the same instances replaces an older one. The
``caldav`` library lists such an inbox and accepts from it.
"""

from __future__ import annotations

import asyncio
import re

import caldav
from icalendar import Calendar

from congvu.services import Services
from tests.caldav.sched_helpers import AN, BINH, THU, copy, ics, inbox
from tests.conftest import PASSWORD


def url(owner: str, href: str) -> str:
    return f"/dav/calendars/users/{owner}/calendar/{href}"


def methods(messages: list[str]) -> list[tuple[str, str]]:
    out = []
    for text in messages:
        cal = Calendar.from_ical(text)
        comp = cal.walk("VEVENT")[0]
        who = comp["ATTENDEE"] if str(cal["METHOD"]) == "REPLY" else comp["ORGANIZER"]
        who = who[0] if isinstance(who, list) else who
        out.append((str(cal["METHOD"]), str(who).lower().removeprefix("mailto:")))
    return sorted(out)


async def test_replies_of_every_attendee_are_kept(dav, services: Services) -> None:
    assert (await dav.request("PUT", url(AN, "ib.ics"),
                              body=ics("ib-1", [THU, BINH]))).status_code == 201
    for who, answer in ((THU, "ACCEPTED"), (BINH, "DECLINED")):
        mine, _ = await copy(services, who, "ib-1")  # type: ignore[misc]
        people = [f"{THU}=ACCEPTED" if who == THU else THU,
                  f"{BINH}=DECLINED" if who == BINH else BINH]
        r = await dav.request("PUT", url(who, mine.href), user=who, body=ics("ib-1", people))
        assert r.status_code == 204, (answer, r.text)
    assert methods(await inbox(services, AN)) == [("REPLY", BINH), ("REPLY", THU)]
    # THU changes their mind: their newer REPLY replaces their older one only
    mine, _ = await copy(services, THU, "ib-1")  # type: ignore[misc]
    await dav.request("PUT", url(THU, mine.href), user=THU,
                      body=ics("ib-1", [f"{THU}=TENTATIVE", f"{BINH}=DECLINED"]))
    box = await inbox(services, AN)
    assert methods(box) == [("REPLY", BINH), ("REPLY", THU)]
    assert any("PARTSTAT=TENTATIVE" in m for m in box)
    # a PROPFIND of the inbox lists both, under distinct hrefs
    r = await dav.request("PROPFIND", f"/dav/calendars/users/{AN}/inbox/", Depth="1",
                          body=b'<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop>'
                               b"</D:propfind>")
    assert r.status_code == 207
    assert len(set(re.findall(r"inbox/([^<]+\.ics)</D:href>", r.text))) == 2


async def test_request_and_cancel_both_reach_the_attendee(dav, services: Services) -> None:
    assert (await dav.request("PUT", url(AN, "c.ics"), body=ics("ib-2", [THU]))).status_code == 201
    # an update supersedes the first REQUEST
    await dav.request("PUT", url(AN, "c.ics"), body=ics("ib-2", [THU], seq=1,
                                                       summary="Đổi giờ"))
    assert methods(await inbox(services, THU)) == [("REQUEST", AN)]
    assert (await dav.request("DELETE", url(AN, "c.ics"))).status_code == 204
    box = await inbox(services, THU)
    assert methods(box) == [("CANCEL", AN), ("REQUEST", AN)]
    assert any("Đổi giờ" in m for m in box)


def _inbox_items(base: str, who: str) -> list[tuple[bool, str]]:
    with caldav.DAVClient(url=f"{base}/dav/", username=who, password=PASSWORD) as client:
        items = client.principal().schedule_inbox().get_items()
        return sorted((i.is_invite_reply(), str(i.icalendar_component["UID"])) for i in items)


async def test_caldav_library_reads_an_inbox_with_one_uid_twice(dav_url: str, dav,
                                                                services) -> None:
    assert (await dav.request("PUT", url(AN, "l.ics"),
                              body=ics("ib-3", [THU, BINH]))).status_code == 201
    for who in (THU, BINH):
        mine, _ = await copy(services, who, "ib-3")  # type: ignore[misc]
        people = [f"{p}=ACCEPTED" if p == who else p for p in (THU, BINH)]
        assert (await dav.request("PUT", url(who, mine.href), user=who,
                                  body=ics("ib-3", people))).status_code == 204
    assert await asyncio.to_thread(_inbox_items, dav_url, AN) == [(True, "ib-3"), (True, "ib-3")]


async def test_a_series_update_supersedes_an_instance_request(dav, services) -> None:
    """A REQUEST for one instance stays beside the series' REQUEST; a REQUEST
    covering the series and that instance replaces both."""
    series = ics("ib-4", [THU], extra="RRULE:FREQ=WEEKLY;COUNT=3\r\n")
    assert (await dav.request("PUT", url(AN, "s.ics"), body=series)).status_code == 201
    override = (
        "BEGIN:VEVENT\r\nUID:ib-4\r\nDTSTAMP:20260301T000000Z\r\n"
        "RECURRENCE-ID:20260312T020000Z\r\nDTSTART:20260312T040000Z\r\n"
        "DTEND:20260312T050000Z\r\nSUMMARY:Dời giờ\r\n"
        f"ORGANIZER:mailto:{AN}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:{AN}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{THU}\r\n"
        "{extra}END:VEVENT\r\nEND:VCALENDAR")
    # BINH is invited to the moved instance only: a REQUEST for that instance
    only = series.replace(b"END:VCALENDAR", override.format(
        extra=f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{BINH}\r\n").encode())
    assert (await dav.request("PUT", url(AN, "s.ics"), body=only)).status_code == 204
    assert len(await inbox(services, BINH)) == 1
    # then to the whole series: that REQUEST (master + instance) replaces it
    everywhere = only.replace(
        b"RSVP=TRUE:mailto:" + THU.encode() + b"\r\n",
        b"RSVP=TRUE:mailto:" + THU.encode() + b"\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:"
        + BINH.encode() + b"\r\n", 1)
    assert (await dav.request("PUT", url(AN, "s.ics"), body=everywhere)).status_code == 204
    box = await inbox(services, BINH)
    assert len(box) == 1 and "RRULE" in box[0] and "Dời giờ" in box[0]
    # THU: the series REQUEST and its update for the instance: one, the newest
    thu_box = await inbox(services, THU)
    assert len(thu_box) == 1 and "Dời giờ" in thu_box[0]
