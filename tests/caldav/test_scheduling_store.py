"""Implicit scheduling through the object hooks on real PostgreSQL (congvu.calendar.scheduling).

The HTTP tests with real clients are in test_scheduling_caldav.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email import message_from_bytes, policy

from congvu.directory.service import Directory
from congvu.services import Services
from tests.caldav.sched_helpers import (AN, BINH, DOMAIN, HOA, ROOM, THU, attendee, copy,
                                        delete, ics, inbox, make_room, put)


async def test_invitation_reply_and_schedule_tags(services: Services, org: Directory) -> None:
    await put(services, AN, AN, "hop.ics", ics("hop-1", [BINH, HOA]))
    found = await copy(services, BINH, "hop-1")
    assert found is not None
    binh_obj, binh_cal = found
    assert attendee(binh_cal, BINH)["PARTSTAT"] == "NEEDS-ACTION"
    assert binh_obj.schedule_tag
    # A stored object carries no METHOD (RFC 4791 §4.1) and is indexed by its times.
    assert "METHOD" not in binh_obj.ics and "END:VEVENT\r\nEND:VCALENDAR" in binh_obj.ics
    assert binh_obj.first_start == datetime(2026, 3, 5, 2, 0, tzinfo=UTC)
    assert binh_obj.last_end == datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
    assert any("METHOD:REQUEST" in m for m in await inbox(services, BINH))
    an_obj, an_cal = await copy(services, AN, "hop-1")  # type: ignore[misc]
    assert attendee(an_cal, BINH)["SCHEDULE-STATUS"] == "1.2"
    an_tag = an_obj.schedule_tag
    assert an_tag

    # Bình accepts in his own calendar: the organizer's copy follows.
    accepted = binh_obj.ics.replace("PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:binh",
                                    "PARTSTAT=ACCEPTED:mailto:binh")
    assert accepted != binh_obj.ics
    await put(services, BINH, BINH, binh_obj.href, accepted.encode())
    an_obj2, an_cal2 = await copy(services, AN, "hop-1")  # type: ignore[misc]
    assert attendee(an_cal2, BINH)["PARTSTAT"] == "ACCEPTED"
    assert attendee(an_cal2, HOA)["PARTSTAT"] == "NEEDS-ACTION"
    # RFC 6638 §3.2.10: neither a merged REPLY nor the attendee's answer changes a tag.
    assert an_obj2.schedule_tag == an_tag
    assert (await copy(services, BINH, "hop-1"))[0].schedule_tag == binh_obj.schedule_tag  # type: ignore[index]
    assert any("METHOD:REPLY" in m for m in await inbox(services, AN))

    # The organizer moves the meeting: a new REQUEST, a new tag for both copies.
    await put(services, AN, AN, "hop.ics", ics("hop-1", [BINH, HOA], start="20260305T040000Z",
                                                 end="20260305T050000Z", seq=1))
    binh_obj3, binh_cal3 = await copy(services, BINH, "hop-1")  # type: ignore[misc]
    assert str(binh_cal3.walk("VEVENT")[0]["DTSTART"].to_ical()) == "b'20260305T040000Z'"
    assert binh_obj3.schedule_tag != binh_obj.schedule_tag
    assert (await copy(services, AN, "hop-1"))[0].schedule_tag != an_tag  # type: ignore[index]

    # Hoa is taken off the list: she gets a CANCEL, her copy is cancelled.
    await put(services, AN, AN, "hop.ics", ics("hop-1", [BINH], seq=2))
    _, hoa_cal = await copy(services, HOA, "hop-1")  # type: ignore[misc]
    assert str(hoa_cal.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    # The organizer deletes it: Bình's copy is cancelled too.
    await delete(services, AN, AN, "hop.ics")
    _, binh_cal4 = await copy(services, BINH, "hop-1")  # type: ignore[misc]
    assert str(binh_cal4.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"


async def test_attendee_delete_declines(services: Services, org: Directory) -> None:
    await put(services, AN, AN, "x.ics", ics("x-1", [BINH]))
    obj, _ = await copy(services, BINH, "x-1")  # type: ignore[misc]
    await delete(services, BINH, BINH, obj.href)
    _, an_cal = await copy(services, AN, "x-1")  # type: ignore[misc]
    assert attendee(an_cal, BINH)["PARTSTAT"] == "DECLINED"


async def test_schedule_agent_client_sends_nothing(services: Services, org: Directory) -> None:
    body = ics("c-1", [BINH]).replace(b"ORGANIZER;", b"ORGANIZER;SCHEDULE-AGENT=CLIENT;")
    await put(services, AN, AN, "c.ics", body)
    assert await copy(services, BINH, "c-1") is None


async def test_room_accepts_when_free_and_declines_when_taken(services: Services,
                                                              org: Directory) -> None:
    await make_room(org)
    await put(services, AN, AN, "r1.ics", ics("r-1", [ROOM]))
    _, an_cal = await copy(services, AN, "r-1")  # type: ignore[misc]
    assert attendee(an_cal, ROOM)["PARTSTAT"] == "ACCEPTED"
    assert (await copy(services, ROOM, "r-1")) is not None
    # Bình wants the room half an hour later: taken.
    await put(services, BINH, BINH, "r2.ics", ics("r-2", [ROOM], organizer=BINH,
                                                    start="20260305T023000Z",
                                                    end="20260305T033000Z"))
    _, binh_cal = await copy(services, BINH, "r-2")  # type: ignore[misc]
    assert attendee(binh_cal, ROOM)["PARTSTAT"] == "DECLINED"
    assert await copy(services, ROOM, "r-2") is None
    # An cancels: the slot is free again, and Bình's retry is accepted.
    await delete(services, AN, AN, "r1.ics")
    assert await copy(services, ROOM, "r-1") is None
    await put(services, BINH, BINH, "r2.ics", ics("r-2", [ROOM], organizer=BINH, seq=1,
                                                    start="20260305T023000Z",
                                                    end="20260305T033000Z"))
    _, binh_cal = await copy(services, BINH, "r-2")  # type: ignore[misc]
    assert attendee(binh_cal, ROOM)["PARTSTAT"] == "ACCEPTED"


async def test_two_concurrent_bookings_one_wins(services: Services, org: Directory) -> None:
    await make_room(org)
    for _ in range(3):  # a few rounds: the race must never double-book
        uid_a, uid_b = f"a-{_}", f"b-{_}"
        start = f"202604{10 + _:02d}T020000Z"
        end = f"202604{10 + _:02d}T030000Z"
        await asyncio.gather(
            put(services, AN, AN, f"{uid_a}.ics", ics(uid_a, [ROOM], start=start, end=end)),
            put(services, BINH, BINH, f"{uid_b}.ics",
                ics(uid_b, [ROOM], organizer=BINH, start=start, end=end)),
        )
        _, a = await copy(services, AN, uid_a)  # type: ignore[misc]
        _, b = await copy(services, BINH, uid_b)  # type: ignore[misc]
        answers = sorted([attendee(a, ROOM)["PARTSTAT"], attendee(b, ROOM)["PARTSTAT"]])
        assert answers == ["ACCEPTED", "DECLINED"]
        held = [await copy(services, ROOM, u) for u in (uid_a, uid_b)]
        assert sum(h is not None for h in held) == 1


async def test_external_attendee_gets_imip_request(services: Services, org: Directory) -> None:
    await put(services, AN, AN, "e.ics", ics("e-1", ["khach@example.org", BINH]))
    async with services.db.connection() as conn:
        rows = await conn.fetch("SELECT m.mail_from, m.raw, r.rcpt FROM outbound_messages m"
                                " JOIN outbound_recipients r ON r.message_id = m.id")
    assert [(r["mail_from"], r["rcpt"]) for r in rows] == [(AN, "khach@example.org")]
    msg = message_from_bytes(bytes(rows[0]["raw"]), policy=policy.default)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "REQUEST"
    assert "METHOD:REQUEST" in part.get_content()
    _, an_cal = await copy(services, AN, "e-1")  # type: ignore[misc]
    assert attendee(an_cal, "khach@example.org")["SCHEDULE-STATUS"] == "1.1"
    assert attendee(an_cal, BINH)["SCHEDULE-STATUS"] == "1.2"


async def test_unknown_local_attendee_gets_status_3_7(services: Services, org: Directory) -> None:
    await put(services, AN, AN, "u.ics", ics("u-1", [f"khong-co@{DOMAIN}"]))
    _, an_cal = await copy(services, AN, "u-1")  # type: ignore[misc]
    assert attendee(an_cal, f"khong-co@{DOMAIN}")["SCHEDULE-STATUS"] == "3.7"


async def test_delegate_organises_for_the_leader(services: Services, org: Directory) -> None:
    await put(services, THU, AN, "d.ics", ics("d-1", [BINH]))
    _, an_cal = await copy(services, AN, "d-1")  # type: ignore[misc]
    assert an_cal.walk("VEVENT")[0]["ORGANIZER"].params["SENT-BY"] == f"mailto:{THU}"
    _, binh_cal = await copy(services, BINH, "d-1")  # type: ignore[misc]
    organizer = binh_cal.walk("VEVENT")[0]["ORGANIZER"]
    assert str(organizer) == f"mailto:{AN}" and organizer.params["SENT-BY"] == f"mailto:{THU}"
    async with services.db.connection() as conn:
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE actor = $1 AND action ="
            " 'calendar.schedule-on-behalf' AND target = $2", THU, AN)
    assert audited == 1


async def test_task_assignment_status_flows_back(services: Services, org: Directory) -> None:
    await put(services, AN, AN, "t.ics", ics("t-1", [BINH, HOA], comp="VTODO",
                                               end="20260310T100000Z",
                                               extra="STATUS:NEEDS-ACTION\r\n"))
    for who in (BINH, HOA):
        obj, cal = await copy(services, who, "t-1")  # type: ignore[misc]
        assert attendee(cal, who, "VTODO")["PARTSTAT"] == "NEEDS-ACTION"
        done = obj.ics.replace("STATUS:NEEDS-ACTION", "STATUS:COMPLETED\r\nPERCENT-COMPLETE:100")
        await put(services, who, who, obj.href, done.encode())
        _, an_cal = await copy(services, AN, "t-1")  # type: ignore[misc]
        assert attendee(an_cal, who, "VTODO")["PARTSTAT"] == "COMPLETED"
        todo = an_cal.walk("VTODO")[0]
        assert str(todo["STATUS"]) == ("IN-PROCESS" if who == BINH else "COMPLETED")


async def test_crossing_updates_do_not_deadlock(services: Services, org: Directory) -> None:
    """An organizes with Bình while Bình organizes with An: each writes the other's calendar."""
    await put(services, AN, AN, "e1.ics", ics("e-1", [BINH]))
    await put(services, BINH, BINH, "e2.ics", ics("e-2", [AN], organizer=BINH))
    for seq in range(1, 4):
        await asyncio.gather(
            put(services, AN, AN, "e1.ics", ics("e-1", [BINH], seq=seq)),
            put(services, BINH, BINH, "e2.ics", ics("e-2", [AN], organizer=BINH, seq=seq)),
        )
    _, a = await copy(services, AN, "e-2")  # type: ignore[misc]
    _, b = await copy(services, BINH, "e-1")  # type: ignore[misc]
    assert int(a.walk("VEVENT")[0]["SEQUENCE"]) == int(b.walk("VEVENT")[0]["SEQUENCE"]) == 3


async def test_attendee_accepts_one_occurrence(services: Services, org: Directory) -> None:
    weekly = ics("tuan-1", [BINH], extra="RRULE:FREQ=WEEKLY;COUNT=4\r\n")
    await put(services, AN, AN, "tuan.ics", weekly)
    obj, _ = await copy(services, BINH, "tuan-1")  # type: ignore[misc]
    # Bình's client answers for the second meeting only: an override with RECURRENCE-ID.
    override = ("BEGIN:VEVENT\r\nUID:tuan-1\r\nDTSTAMP:20260301T000000Z\r\n"
                "RECURRENCE-ID:20260312T020000Z\r\nDTSTART:20260312T020000Z\r\n"
                "DTEND:20260312T030000Z\r\nSEQUENCE:0\r\nSUMMARY:Họp giao ban\r\n"
                f"ORGANIZER:mailto:{AN}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:{AN}\r\n"
                f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BINH}\r\nEND:VEVENT\r\n")
    await put(services, BINH, BINH, obj.href,
              obj.ics.replace("END:VCALENDAR", override + "END:VCALENDAR").encode())
    _, an_cal = await copy(services, AN, "tuan-1")  # type: ignore[misc]
    events = an_cal.walk("VEVENT")
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    second = next(e for e in events if "RECURRENCE-ID" in e)
    assert attendee_of(master, BINH) == "NEEDS-ACTION"
    assert attendee_of(second, BINH) == "ACCEPTED"


def attendee_of(comp: object, address: str) -> str:
    for a in comp["ATTENDEE"]:  # type: ignore[index]
        if str(a).lower() == f"mailto:{address}":
            return str(a.params["PARTSTAT"])
    raise AssertionError(address)
