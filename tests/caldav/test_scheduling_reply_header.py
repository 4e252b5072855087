"""RFC 6638 §8.1 ``Schedule-Reply: F``: an attendee's change is stored, no REPLY sent."""

from __future__ import annotations

from congvu.services import Services
from tests.caldav.sched_helpers import AN, BINH, THU, attendee, copy, ics, inbox


def url(owner: str, href: str) -> str:
    return f"/dav/calendars/users/{owner}/calendar/{href}"


async def test_schedule_reply_f_on_attendee_put_and_delete(dav, services: Services) -> None:
    assert (await dav.request("PUT", url(AN, "r.ics"),
                              body=ics("sr-1", [THU, BINH]))).status_code == 201
    thu_copy, _ = await copy(services, THU, "sr-1")  # type: ignore[misc]
    an_inbox = await inbox(services, AN)

    # THU accepts, but tells the server not to reply
    r = await dav.request("PUT", url(THU, thu_copy.href), user=THU,
                          body=ics("sr-1", [f"{THU}=ACCEPTED", BINH]), Schedule_Reply="F")
    assert r.status_code == 204, r.text
    _, thu_cal = await copy(services, THU, "sr-1")  # type: ignore[misc]
    assert attendee(thu_cal, THU)["PARTSTAT"] == "ACCEPTED"  # stored
    _, an_cal = await copy(services, AN, "sr-1")  # type: ignore[misc]
    assert attendee(an_cal, THU)["PARTSTAT"] == "NEEDS-ACTION"  # organizer not told
    assert await inbox(services, AN) == an_inbox

    # BINH deletes the copy with Schedule-Reply: F: no DECLINED reaches AN
    binh_copy, _ = await copy(services, BINH, "sr-1")  # type: ignore[misc]
    r = await dav.request("DELETE", url(BINH, binh_copy.href), user=BINH, Schedule_Reply="F")
    assert r.status_code == 204
    assert await copy(services, BINH, "sr-1") is None
    _, an_cal = await copy(services, AN, "sr-1")  # type: ignore[misc]
    assert attendee(an_cal, BINH)["PARTSTAT"] == "NEEDS-ACTION"
    assert await inbox(services, AN) == an_inbox

    # without the header (or with T) the answer flows as before
    r = await dav.request("PUT", url(THU, thu_copy.href), user=THU,
                          body=ics("sr-1", [f"{THU}=TENTATIVE", BINH]), Schedule_Reply="T")
    assert r.status_code == 204
    _, an_cal = await copy(services, AN, "sr-1")  # type: ignore[misc]
    assert attendee(an_cal, THU)["PARTSTAT"] == "TENTATIVE"


async def test_schedule_reply_f_does_not_silence_the_organizer(dav, services) -> None:
    # The header speaks for an attendee's answer only (§8.1): an organizer's
    # invitation still goes out.
    r = await dav.request("PUT", url(AN, "o.ics"), body=ics("sr-2", [THU]), Schedule_Reply="F")
    assert r.status_code == 201
    assert await copy(services, THU, "sr-2") is not None
